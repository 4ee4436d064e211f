import Foundation
import HubCore
import HubTestSupport
import Registry
import StreamHub
import Testing

/// Reads frames until one with `event == type` arrives (skipping others), failing after `seconds`.
func nextEvent(_ probe: WebSocketProbe, _ type: String, within seconds: Double = 10) async throws -> [String: Any] {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let frame = try await probe.nextJSON(within: max(0.1, deadline.timeIntervalSinceNow))
        if frame["event"] as? String == type { return frame }
    }
    throw TestFailure("no \(type) frame within \(seconds) s")
}

@Suite struct CableTests {
    @Test(arguments: TestDatabases.available)
    func writesArriveWithTheFullStream(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let probe = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.viewer.token!)")
            defer { Task { await probe.close() } }
            let welcome = try await nextEvent(probe, "welcome")
            #expect(welcome["role"] as? String == "viewer")
            let events = WebSocketProbe(port: client.port!, path: "/events?types=stream_created,stream_updated,stream_deleted&token=\(team.viewer.token!)")
            // /events sends nothing on connect: subscribe and wait for the ack, so the hub has the connection.
            events.send(#"{"subscribe":["stream_created","stream_updated","stream_deleted"]}"#)
            _ = try await nextEvent(events, "subscribed")

            let created = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/live1","city":"Omaha"}"#)
            let id = try #require(created.json["id"] as? Int)
            let frame = try await nextEvent(probe, "stream_created")
            let stream = try #require(frame["stream"] as? [String: Any])
            #expect(stream["id"] as? Int == id)
            #expect(stream["city"] as? String == "Omaha")
            #expect(stream.keys.contains("last_live_at"))
            let firstID = try #require(frame["event_id"] as? Int)

            _ = try await team.editor.patch("/api/v1/streams/\(id)", #"{"status":"live"}"#)
            let updated = try await nextEvent(probe, "stream_updated")
            #expect((updated["stream"] as? [String: Any])?["status"] as? String == "live")
            #expect((updated["event_id"] as? Int ?? 0) > firstID)
            _ = try await team.admin.delete("/api/v1/streams/\(id)")
            let deleted = try await nextEvent(probe, "stream_deleted")
            #expect((deleted["stream"] as? [String: Any])?["id"] as? Int == id)

            // The same events are on /events.
            #expect(try await nextEvent(events, "stream_created")["event_id"] as? Int == firstID)
            await events.close()
        }
    }

    @Test func authenticateByFirstMessageOrBeClosed() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let probe = WebSocketProbe(port: client.port!, path: "/api/v1/cable")
            _ = try await nextEvent(probe, "auth_required")
            probe.send(#"{"lock":1}"#)
            #expect(try await nextEvent(probe, "error")["code"] as? String == "unauthenticated")
            probe.send(#"{"auth":"\#(team.editor.token!)"}"#)
            #expect(try await nextEvent(probe, "welcome")["role"] as? String == "editor")
            _ = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/msgauth"}"#)
            _ = try await nextEvent(probe, "stream_created")
            await probe.close()

            let bad = WebSocketProbe(port: client.port!, path: "/api/v1/cable")
            _ = try await nextEvent(bad, "auth_required")
            bad.send(#"{"auth":"shk_nope"}"#)
            let close = try await bad.closeFrame()
            #expect(close?.closeCode == .unknown(4401))

            // A bad token in the URL refuses the upgrade with the JSON 401.
            let refused = try await APIClient(client).get("/api/v1/cable?token=garbage")
            #expect(refused.status == .unauthorized)
        }
    }

    @Test(arguments: TestDatabases.available)
    func reconnectingWithSinceReplaysWhatWasMissed(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let first = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/a1"}"#)
            let id = try #require(first.json["id"] as? Int)
            // Learn the current event id from a live connection.
            let live = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.viewer.token!)")
            _ = try await nextEvent(live, "welcome")
            _ = try await team.editor.patch("/api/v1/streams/\(id)", #"{"title":"one"}"#)
            let seen = try #require(try await nextEvent(live, "stream_updated")["event_id"] as? Int)
            await live.close()
            // Missed while away:
            _ = try await team.editor.patch("/api/v1/streams/\(id)", #"{"title":"two"}"#)
            _ = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/a2"}"#)

            let back = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.viewer.token!)&since=\(seen)")
            _ = try await nextEvent(back, "welcome")
            let missed1 = try await back.nextJSON()
            let missed2 = try await back.nextJSON()
            #expect(missed1["event"] as? String == "stream_updated")
            #expect((missed1["stream"] as? [String: Any])?["title"] as? String == "two")
            #expect(missed2["event"] as? String == "stream_created")
            #expect((missed1["event_id"] as? Int ?? 0) > seen)
            #expect((missed2["event_id"] as? Int ?? 0) > (missed1["event_id"] as? Int ?? 0))
            await back.close()

            // Further back than the log reaches: refetch.
            try await app.database.sql.raw("DELETE FROM registry_changes WHERE id <= \(bind: seen + 1)").run()
            let stale = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.viewer.token!)&since=\(seen - 1)")
            #expect(try await nextEvent(stale, "refetch")["reason"] as? String == "too_far_behind")
            await stale.close()
        }
    }

    @Test func editLocksAreSharedAndHonoured() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            _ = try await RegistryAdmin.createUser(email: "second@example.org", password: testPassword, role: "editor", bcryptCost: 4, database: app.database)
            let login = try await APIClient(client).post("/api/v1/users/login", #"{"email":"second@example.org","password":"\#(testPassword)"}"#)
            let second = APIClient(client, token: login.json["token"] as? String)
            let created = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/locked"}"#)
            let id = try #require(created.json["id"] as? Int)

            let watcher = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.viewer.token!)")
            _ = try await nextEvent(watcher, "welcome")
            let editor = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.editor.token!)")
            _ = try await nextEvent(editor, "welcome")
            editor.send(#"{"lock":\#(id)}"#)
            let locked = try await nextEvent(watcher, "stream_locked")
            #expect(locked["stream_id"] as? Int == id)
            #expect(locked["locked_by"] as? String == "user:editor@example.org")

            let blocked = try await second.patch("/api/v1/streams/\(id)", #"{"title":"mine"}"#)
            #expect(blocked.status.code == 423)
            #expect(blocked.errorCode == "locked")
            #expect(try await second.put("/api/v1/streams/\(id)/lock").status.code == 423)
            #expect(try await team.editor.patch("/api/v1/streams/\(id)", #"{"title":"editor's"}"#).status == .ok, "the holder may write")

            // A late joiner learns of the lock on connect.
            let late = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.viewer.token!)")
            #expect(try await nextEvent(late, "stream_locked")["stream_id"] as? Int == id)

            editor.send(#"{"unlock":\#(id)}"#)
            let unlocked = try await nextEvent(watcher, "stream_unlocked")
            #expect(unlocked["reason"] as? String == "released")
            #expect(try await second.patch("/api/v1/streams/\(id)", #"{"title":"mine"}"#).status == .ok)
            for probe in [watcher, editor, late] { await probe.close() }
        }
    }
}
