import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import HummingbirdTesting
import NIOCore
@testable import Registry
import StreamHub
import Testing

/// Every realtime channel × every kind of caller: each receives exactly what the README's access table
/// says, checked by the content of what arrives.
@Suite struct ChannelAccessTests {
    /// What the scenario publishes, in order, before the sentinel.
    struct World: Sendable {
        let team: Team
        let communityA: (id: Int, key: String)
        let communityB: (id: Int, key: String)
        let apiKey: String
        let apiKeyID: Int
    }

    static func community(_ team: Team, _ name: String) async throws -> (id: Int, key: String) {
        let created = try await team.editor.post("/api/v1/communities", #"{"name":"\#(name)"}"#)
        let community = try #require(created.json["community"] as? [String: Any])
        return (try #require(community["id"] as? Int), try #require(created.json["overlay_key"] as? String))
    }

    static func makeWorld(_ app: StreamHubApplication, _ client: any TestClientProtocol) async throws -> World {
        let team = try await Team.make(app, client)
        let key = try await team.admin.post("/api/v1/api_keys", #"{"name":"wall-feed","role":"viewer"}"#)
        let record = try #require(key.json["api_key"] as? [String: Any])
        return World(team: team, communityA: try await community(team, "north"), communityB: try await community(team, "south"),
                     apiKey: try #require(key.json["key"] as? String), apiKeyID: try #require(record["id"] as? Int))
    }

    /// Publishes one event of every kind, then a sentinel every audience sees.
    static func publishEverything(_ app: StreamHubApplication, _ client: any TestClientProtocol, _ world: World) async throws {
        let created = try await world.team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/access_matrix","city":"Omaha"}"#)
        #expect(created.status == .created)
        let recording = try await world.team.editor.post("/api/v1/recordings", #"{"url":"http://127.0.0.1:9/nothing.m3u8"}"#)
        #expect(recording.status == .created, "\(recording.text)")
        for (community, text) in [(world.communityA.id, "caption for north"), (world.communityB.id, "caption for south")] {
            let posted = try await client.execute(uri: "/api/v1/internal/captions", method: .post,
                                                  headers: [HTTPField.Name("X-Service-Key")!: testServiceKey, .contentType: "application/json"],
                                                  body: ByteBuffer(string: #"{"community_id":\#(community),"text":"\#(text)"}"#))
            #expect(posted.status == .accepted)
        }
        let upstream = try await client.execute(uri: "/api/v1/events", method: .post,
                                                headers: [HTTPField.Name("X-Service-Key")!: testServiceKey, .contentType: "application/json"],
                                                body: ByteBuffer(string: #"[{"event":"transcription","text":"upstream words","session_id":"s"},{"event":"wake_word","word":"jarvis","confidence":0.9}]"#))
        #expect(upstream.status == .accepted)
        // Internal coordination events must never show: an ignore-list change publishes one.
        _ = try await world.team.editor.post("/api/v1/ignore_lists", #"{"type":"domain","value":"spam.example"}"#)
        app.bus.publish(type: "test_sentinel", payload: ByteBuffer(string: "{}"), visibility: .everyone)
    }

    /// Opens `/events` with `credential` (a query) and waits for the subscription ack.
    static func events(_ port: Int, _ credential: String) async throws -> WebSocketProbe {
        let probe = WebSocketProbe(port: port, path: "/events?\(credential)")
        probe.send(#"{"subscribe":["*"]}"#)
        let ack = try await probe.nextJSON()
        guard ack["event"] as? String == "subscribed" else { throw TestFailure("expected the subscription ack, got \(ack)") }
        return probe
    }

    /// Every frame up to the sentinel, as "type" or "type:detail" (the caption text, the transcription text).
    static func received(_ probe: WebSocketProbe) async throws -> [String] {
        var seen: [String] = []
        while true {
            let frame = try await probe.nextJSON()
            let type = frame["event"] as? String ?? frame["type"] as? String ?? "?"
            if type == "test_sentinel" { return seen }
            switch type {
            case "caption", "transcription": seen.append("\(type):\(frame["text"] as? String ?? "")")
            default: seen.append(type)
            }
        }
    }

    static let streamAndRecording: Set<String> = ["stream_created", "recording_state"]
    static let upstreamSpeech: Set<String> = ["transcription:upstream words", "wake_word"]
    static let bothCommunities: Set<String> = ["caption:caption for north", "caption:caption for south",
                                               "transcription:caption for north", "transcription:caption for south"]

    @Test func eventsChannelGivesEachCallerExactlyWhatTheTableSays() async throws {
        try await withTestApplication { app, client in
            let world = try await Self.makeWorld(app, client)
            let port = client.port!
            let callers: [(String, String, Set<String>)] = [
                ("viewer", "token=\(world.team.viewer.token!)", Self.streamAndRecording.union(Self.upstreamSpeech)),
                ("viewer API key", "token=\(world.apiKey)", Self.streamAndRecording.union(Self.upstreamSpeech)),
                ("editor", "token=\(world.team.editor.token!)", Self.streamAndRecording.union(Self.upstreamSpeech).union(Self.bothCommunities)),
                ("admin", "token=\(world.team.admin.token!)", Self.streamAndRecording.union(Self.upstreamSpeech).union(Self.bothCommunities)),
                ("service key", "key=\(testServiceKey)", Self.upstreamSpeech.union(["transcription:caption for north", "transcription:caption for south"])),
                ("overlay key of north", "key=\(world.communityA.key)", ["caption:caption for north", "transcription:caption for north"]),
                ("overlay key of south", "key=\(world.communityB.key)", ["caption:caption for south", "transcription:caption for south"]),
            ]
            var probes: [(String, WebSocketProbe, Set<String>)] = []
            for (name, credential, expected) in callers { probes.append((name, try await Self.events(port, credential), expected)) }
            try await Self.publishEverything(app, client, world)
            for (name, probe, expected) in probes {
                let seen = try await Self.received(probe)
                #expect(Set(seen) == expected, "\(name) received \(seen)")
                #expect(!seen.contains { $0.hasPrefix("internal") }, "\(name) received an internal event")
                await probe.close()
            }
        }
    }

    @Test func callersWithoutValidCredentialsAreClosedWith4401() async throws {
        try await withTestApplication { app, client in
            let world = try await Self.makeWorld(app, client)
            let expired = try await app.registry.access.tokens.issue(userID: 1, email: "admin@example.org", role: .admin, now: Timestamp.now() - 86_400 - 5)
            let forged = world.team.viewer.token!.dropLast(4) + "AAAA"
            for path in ["/events", "/events?token=\(expired.token)", "/events?token=\(forged)", "/events?key=not-a-key", "/events?token=shk_nonsense",
                         "/api/stream/ws?target=state", "/api/stream/ws?target=preview&token=\(expired.token)", "/ws/captions/\(world.communityA.id)",
                         "/ws/captions/\(world.communityA.id)?key=\(world.team.admin.token!)"] {
                let probe = WebSocketProbe(port: client.port!, path: path)
                let close = try await probe.closeFrame()
                #expect(close?.closeCode == .unknown(4401), "\(path)")
                #expect(close?.reason?.isEmpty == false, "\(path) says why")
            }
            // Keys that are valid but may not read recordings, or another community: 4403.
            for path in ["/api/stream/ws?target=state&key=\(testServiceKey)", "/api/stream/ws?target=state&key=\(world.communityA.key)",
                         "/ws/captions/\(world.communityA.id)?key=\(world.communityB.key)"] {
                let probe = WebSocketProbe(port: client.port!, path: path)
                #expect(try await probe.closeFrame()?.closeCode == .unknown(4403), "\(path)")
            }
        }
    }

    @Test func stateChannelFollowsTheRecordingsRule() async throws {
        try await withTestApplication { app, client in
            let world = try await Self.makeWorld(app, client)
            let recording = try await world.team.editor.post("/api/v1/recordings", #"{"url":"http://127.0.0.1:9/nothing.m3u8"}"#)
            let id = try #require(recording.json["id"] as? String)
            for credential in ["token=\(world.team.viewer.token!)", "token=\(world.apiKey)"] {
                let probe = WebSocketProbe(port: client.port!, path: "/api/stream/ws?target=state&\(credential)")
                #expect(try await probe.nextJSON()["type"] as? String == "welcome")
                let update = try await probe.nextJSON()
                let payload = try #require(update["payload"] as? [String: Any])
                #expect((payload["recording"] as? [String: Any])?["id"] as? String == id)
                await probe.close()
            }
        }
    }

    /// Logout, a disabled account, a revoked API key, a role change and an expiring token each close the
    /// sockets opened with them within a second; other sockets stay open.
    @Test func revokedOrExpiredCredentialsCloseOpenSocketsWithinASecond() async throws {
        try await withTestApplication { app, client in
            let world = try await Self.makeWorld(app, client)
            let port = client.port!
            let viewerID = try #require(try await world.team.viewer.get("/api/v1/users/me").json["id"] as? Int)

            // Logout of one token closes its sockets on every channel, not the editor's.
            let loggedOut = try await signIn(app, client, email: "leaving@example.org", role: "viewer")
            let onEvents = try await Self.events(port, "token=\(loggedOut)")
            let onState = WebSocketProbe(port: port, path: "/api/stream/ws?target=state&token=\(loggedOut)")
            #expect(try await onState.nextJSON()["type"] as? String == "welcome")
            let bystander = try await Self.events(port, "token=\(world.team.editor.token!)")
            // Each close is timed from the moment the server acknowledged the change (the revocation is in effect
            // from then on); the request itself may queue behind the other suites' work on a busy CI machine.
            #expect(try await APIClient(client, token: loggedOut).post("/api/v1/users/logout").status == .noContent)
            var started = ContinuousClock.now
            #expect(try await onEvents.closeFrame(within: 2)?.closeCode == .unknown(4401))
            #expect(try await onState.closeFrame(within: 2)?.closeCode == .unknown(4401))
            #expect(ContinuousClock.now - started < .seconds(1))

            // A disabled user.
            let viewerSocket = try await Self.events(port, "token=\(world.team.viewer.token!)")
            #expect(try await world.team.admin.patch("/api/v1/users/\(viewerID)", #"{"disabled":true}"#).status == .ok)
            started = ContinuousClock.now
            #expect(try await viewerSocket.closeFrame(within: 2)?.closeCode == .unknown(4401))
            #expect(ContinuousClock.now - started < .seconds(1))
            // …and it cannot come back.
            #expect(try await WebSocketProbe(port: port, path: "/events?token=\(world.team.viewer.token!)").closeFrame()?.closeCode == .unknown(4401))

            // A revoked API key.
            let keySocket = try await Self.events(port, "token=\(world.apiKey)")
            #expect(try await world.team.admin.delete("/api/v1/api_keys/\(world.apiKeyID)").status == .noContent)
            started = ContinuousClock.now
            #expect(try await keySocket.closeFrame(within: 2)?.closeCode == .unknown(4401))
            #expect(ContinuousClock.now - started < .seconds(1))

            // A token that expires while connected (issued so that it has two seconds left).
            let editorID = try #require(try await world.team.editor.get("/api/v1/users/me").json["id"] as? Int)
            let soon = try await app.registry.access.tokens.issue(userID: Int64(editorID), email: "editor@example.org", role: .editor,
                                                                  now: Timestamp.now() - app.registry.access.tokens.lifetime + 2)
            let expiring = try await Self.events(port, "token=\(soon.token)")
            let close = try await expiring.closeFrame(within: 5)
            #expect(close?.closeCode == .unknown(4401))
            #expect(close?.reason?.contains("expired") == true)

            // The bystander is still there and still receives.
            app.bus.publish(type: "test_sentinel", payload: ByteBuffer(string: "{}"), visibility: .everyone)
            let seen = try await Self.received(bystander)
            #expect(!seen.contains("test_sentinel"))
            await bystander.close()
        }
    }

    @Test func overlaySocketOpenedWithARotatedKeyClosesWhenItsGraceEnds() async throws {
        try await withTestApplication(configure: { $0.overlayGracePeriod = 4 }) { app, client in
            let world = try await Self.makeWorld(app, client)
            let port = client.port!
            // Open before the rotation with the then-current key, on both channels that take it.
            let before = WebSocketProbe(port: port, path: "/ws/captions/\(world.communityA.id)?key=\(world.communityA.key)")
            let onEvents = try await Self.events(port, "key=\(world.communityA.key)")
            _ = try await APIClient(client).get("/health")  // the captions socket is registered by now (same loop order)
            let rotated = try await world.team.editor.post("/api/v1/communities/\(world.communityA.id)/overlay_key/rotate")
            #expect(rotated.status == .ok)
            let fresh = try #require(rotated.json["overlay_key"] as? String)
            let current = try await Self.events(port, "key=\(fresh)")
            // The old key still opens the channel inside the grace period…
            let during = WebSocketProbe(port: port, path: "/ws/captions/\(world.communityA.id)?key=\(world.communityA.key)")
            // …and every socket opened with it closes when the grace period ends; the new key's stays.
            for probe in [before, onEvents, during] {
                let close = try await probe.closeFrame(within: 10)
                #expect(close?.closeCode == .unknown(4401))
            }
            // Two rotations in a row retire `fresh` at once, without waiting for the (4 s) grace period that the
            // first of them gave it (the bound leaves room for two API calls on a loaded machine).
            let started = ContinuousClock.now
            for _ in 0..<2 {
                #expect(try await world.team.editor.post("/api/v1/communities/\(world.communityA.id)/overlay_key/rotate").status == .ok)
            }
            #expect(try await current.closeFrame(within: 5)?.closeCode == .unknown(4401))
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func metricsAndHealthDetailsFollowTheOperationsRule() async throws {
        // From loopback (a configured network): everything.
        try await withTestApplication { _, client in
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .ok)
            let health = try await APIClient(client).get("/health")
            #expect(health.json["database"] != nil && health.json["instance_id"] != nil)
        }
        // No network configured: /metrics needs the token; /health says only status and version.
        try await withTestApplication(configure: { $0.metricsNetworks = []; $0.metricsToken = "metrics-token-0123456789" }) { _, client in
            let refused = try await APIClient(client).get("/metrics")
            #expect(refused.status == .forbidden)
            #expect((refused.json["error"] as? [String: Any])?["code"] as? String == "forbidden")
            let wrong = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer wrong-token-0123456789"])
            #expect(wrong.status == .unauthorized)
            let allowed = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer metrics-token-0123456789"])
            #expect(allowed.status == .ok)
            let health = try await APIClient(client).get("/health")
            #expect(health.status == .ok)
            #expect(Set(health.json.keys) == ["status", "version"])
            let detailed = try await client.execute(uri: "/health", method: .get, headers: [.authorization: "Bearer metrics-token-0123456789"])
            #expect(String(buffer: detailed.body).contains("instance_id"))
        }
    }
}
