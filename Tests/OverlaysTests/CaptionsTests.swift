import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import Overlays
import Registry
import StreamHub
import Testing

/// Creates a community through the API and answers its id and overlay key.
func makeCommunity(_ editor: APIClient, _ name: String) async throws -> (id: Int, key: String) {
    let response = try await editor.post("/api/v1/communities", #"{"name":"\#(name)"}"#)
    guard response.status == .created, let key = response.json["overlay_key"] as? String,
          let id = (response.json["community"] as? [String: any Sendable])?["id"] as? Int
    else { throw TestFailure("community not created: \(response.status) \(response.text)") }
    return (id, key)
}

func postCaption(_ client: APIClient, _ body: String, key: String = testServiceKey) async throws -> APIResponse {
    try await client.post("/api/v1/internal/captions", body, headers: [HTTPField.Name("X-Service-Key")!: key])
}

/// Reads caption frames until one with `text` arrives.
func nextCaption(_ probe: WebSocketProbe, within seconds: Double = 10) async throws -> [String: Any] {
    let frame = try await probe.nextJSON(within: seconds)
    guard frame["type"] as? String == "caption" else { throw TestFailure("not a caption frame: \(frame)") }
    return frame
}

@Suite struct CaptionsTests {
    @Test(arguments: TestDatabases.available)
    func captionsReachTheCommunitysOverlaysAndAreStoredInBatches(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let north = try await makeCommunity(team.editor, "north")
            let south = try await makeCommunity(team.editor, "south")
            let probe = WebSocketProbe(port: client.port!, path: "/ws/captions/\(north.id)?key=\(north.key)")
            let other = WebSocketProbe(port: client.port!, path: "/ws/captions/\(south.id)?key=\(south.key)")
            probe.send("ping")
            #expect(try await probe.next() == "pong")

            let accepted = try await postCaption(team.anonymous, #"{"community_id":\#(north.id),"text":"hello <world>","speaker":"ada","language":"en","is_final":false}"#)
            #expect(accepted.status == .accepted)
            #expect(accepted.json["stored"] as? Bool == true)
            let first = try await nextCaption(probe)
            #expect(first["text"] as? String == "hello <world>")
            #expect(first["is_final"] as? Bool == false)
            #expect(first["username"] as? String == "ada")
            #expect(first["detected_lang"] as? String == "en")
            #expect(first["timestamp"] is String)

            // The chat-translation router's body.
            let routed = try await postCaption(team.anonymous, """
                {"community_id":"\(north.id)","platform":"twitch","username":"bob","original_message":"hola","translated_message":"hello",
                 "detected_language":"es","target_language":"en","confidence":0.93}
                """)
            #expect(routed.status == .accepted)
            let second = try await nextCaption(probe)
            #expect(second["text"] as? String == "hello")
            #expect(second["original"] as? String == "hola")
            #expect(second["translated"] as? String == "hello")
            #expect(second["target_lang"] as? String == "en")
            #expect(second["confidence"] as? Double == 0.93)

            // The other community heard nothing: its first frame is the next caption posted to it.
            _ = try await postCaption(team.anonymous, #"{"community_id":\#(south.id),"text":"south only"}"#)
            #expect(try await nextCaption(other)["text"] as? String == "south only")

            try await eventually("captions stored") {
                let count = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM caption_events").first()?.decode(column: "n", as: Int.self)
                return count == 3
            }
            await probe.close()
            await other.close()
        }
    }

    @Test func historyReplaysTheLastTenOfTheLastFiveMinutesInOrder() async throws {
        let clock = ManualWallClock(Date())
        try await withTestApplication(clock: clock) { app, client in
            let team = try await Team.make(app, client)
            let community = try await makeCommunity(team.editor, "replay")
            // A listener, so we know each caption has passed through the hub before the next step.
            let listener = WebSocketProbe(port: client.port!, path: "/ws/captions/\(community.id)?key=\(community.key)")
            _ = try await postCaption(team.anonymous, #"{"community_id":\#(community.id),"text":"old"}"#)
            _ = try await nextCaption(listener)
            clock.advance(by: 301)
            for index in 1...12 {
                _ = try await postCaption(team.anonymous, #"{"community_id":\#(community.id),"text":"line \#(index)"}"#)
                #expect(try await nextCaption(listener)["text"] as? String == "line \(index)")
            }
            let late = WebSocketProbe(port: client.port!, path: "/ws/captions/\(community.id)?key=\(community.key)")
            var replayed: [String] = []
            for _ in 0..<10 { replayed.append(try await nextCaption(late)["text"] as? String ?? "?") }
            #expect(replayed == (3...12).map { "line \($0)" })
            late.send("ping")
            #expect(try await late.next() == "pong", "nothing beyond the ten was replayed")
            clock.advance(by: 301)
            let later = WebSocketProbe(port: client.port!, path: "/ws/captions/\(community.id)?key=\(community.key)")
            later.send("ping")
            #expect(try await later.next() == "pong", "captions older than five minutes are not replayed")
            for probe in [listener, late, later] { await probe.close() }
        }
    }

    @Test func wrongMissingOrForeignKeysAreClosedWith4xxx() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let north = try await makeCommunity(team.editor, "north")
            let south = try await makeCommunity(team.editor, "south")
            let cases: [(String, UInt16)] = [
                ("/ws/captions/\(north.id)?key=\(String(repeating: "0", count: 64))", 4401),
                ("/ws/captions/\(north.id)", 4401),
                ("/ws/captions/\(north.id)?key=\(south.key)", 4403),
                ("/ws/captions/nope?key=\(north.key)", 4404),
            ]
            for (path, code) in cases {
                let probe = WebSocketProbe(port: client.port!, path: path)
                let close = try await probe.closeFrame()
                #expect(close?.closeCode == .unknown(code), "\(path)")
                #expect(close?.reason?.isEmpty == false, "\(path)")
            }
        }
    }

    @Test func badCaptionsAreRefusedAndNothingIsStoredOrSent() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let north = try await makeCommunity(team.editor, "north")
            let probe = WebSocketProbe(port: client.port!, path: "/ws/captions/\(north.id)?key=\(north.key)")
            let long = String(repeating: "x", count: 2001)
            let cases: [(String, String?, Int, String)] = [
                (#"{"community_id":\#(north.id),"text":"hi"}"#, nil, 401, "invalid_service_key"),
                (#"{"community_id":\#(north.id),"text":"hi"}"#, "wrong-service-key-0123456789", 401, "invalid_service_key"),
                ("{not json", testServiceKey, 400, "invalid_json"),
                (#"{"text":"hi"}"#, testServiceKey, 400, "invalid_json"),
                (#"{"community_id":[1],"text":"hi"}"#, testServiceKey, 400, "invalid_json"),
                (#"{"community_id":\#(north.id),"text":42}"#, testServiceKey, 400, "invalid_json"),
                (#"{"community_id":\#(north.id),"text":""}"#, testServiceKey, 422, "validation_failed"),
                (#"{"community_id":\#(north.id),"text":"\#(long)"}"#, testServiceKey, 422, "validation_failed"),
                (#"{"community_id":\#(north.id),"text":"hi","language":"english!"}"#, testServiceKey, 422, "validation_failed"),
                (#"{"community_id":\#(north.id),"text":"hi","confidence":7}"#, testServiceKey, 422, "validation_failed"),
                (#"{"community_id":999,"text":"hi"}"#, testServiceKey, 422, "validation_failed"),
            ]
            for (body, key, status, code) in cases {
                var headers: HTTPFields = [:]
                if let key { headers[HTTPField.Name("X-Service-Key")!] = key }
                let response = try await team.anonymous.post("/api/v1/internal/captions", body, headers: headers)
                #expect(Int(response.status.code) == status, "\(body.prefix(60))")
                #expect(response.errorCode == code, "\(body.prefix(60)): \(response.text)")
            }
            let stored = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM caption_events").first()?.decode(column: "n", as: Int.self)
            #expect(stored == 0)
            probe.send("ping")
            #expect(try await probe.next() == "pong", "no caption frame reached the overlay")
            await probe.close()
        }
    }

    @Test func overlayPagesValidateKeysAndLogAccessWithKeyPrefixesOnly() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let north = try await makeCommunity(team.editor, "north")
            let source = try await team.editor.post("/api/v1/communities/\(north.id)/sources",
                                                    #"{"name":"<b>Map</b>","kind":"web","url":"https://maps.example/live","x":10,"y":20,"width":300,"height":200}"#)
            #expect(source.status == .created)
            _ = try await team.editor.post("/api/v1/communities/\(north.id)/sources", ##"{"name":"cc","kind":"captions","style":{"size":48,"color":"#ffee00","max_lines":2}}"##)
            let page = try await team.anonymous.get("/overlay/\(north.key)", headers: [.userAgent: "OBS/30"])
            #expect(page.status == .ok)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "ALLOWALL")
            let csp = try #require(page.headers[HTTPField.Name("Content-Security-Policy")!])
            #expect(csp.contains("frame-src https://maps.example"))
            #expect(page.text.contains("&lt;b&gt;Map&lt;/b&gt;"))
            #expect(page.text.contains("id=\"captions\""))
            let captionsOnly = try await team.anonymous.get("/overlay/captions/\(north.key)")
            #expect(captionsOnly.status == .ok)
            #expect(!captionsOnly.text.contains("maps.example"))

            let bad = try await team.anonymous.get("/overlay/\(String(repeating: "a", count: 64))")
            #expect(bad.status == .unauthorized)
            #expect(bad.errorCode == "invalid_overlay_key")

            // A change to the sources shows at once (the cached page is invalidated).
            _ = try await team.editor.patch("/api/v1/communities/\(north.id)/sources/\(source.json["id"] as? Int ?? 0)", #"{"visible":false}"#)
            #expect(!(try await team.anonymous.get("/overlay/\(north.key)").text.contains("maps.example")))

            let log = try await team.editor.get("/api/v1/communities/\(north.id)/access-log")
            let entries = try #require(log.json["entries"] as? [[String: any Sendable]])
            #expect(entries.count == 3)
            #expect(entries.allSatisfy { ($0["key_prefix"] as? String) == String(north.key.prefix(8)) })
            #expect(!log.text.contains(north.key), "never the whole key")
            #expect(entries.last?["user_agent"] as? String == "OBS/30")
            #expect(entries.last?["sources_served"] as? Int == 2)
            let invalid = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM overlay_access_log WHERE result = 'invalid_key'").first()?
                .decode(column: "n", as: Int.self)
            #expect(invalid == 1)
            #expect(try await team.viewer.get("/api/v1/communities/\(north.id)/access-log").status == .forbidden)
        }
    }

    @Test func rotatingKeepsThePreviousKeyForTheGracePeriod() async throws {
        let clock = ManualWallClock(Date())
        try await withTestApplication(clock: clock) { app, client in
            let team = try await Team.make(app, client)
            let north = try await makeCommunity(team.editor, "north")
            let rotated = try await team.editor.post("/api/v1/communities/\(north.id)/overlay_key/rotate")
            let fresh = try #require(rotated.json["overlay_key"] as? String)
            #expect(try await team.anonymous.get("/overlay/\(north.key)").status == .ok, "previous key in the grace period")
            #expect(try await team.anonymous.get("/overlay/\(fresh)").status == .ok)
            clock.advance(by: 301)
            #expect(try await team.anonymous.get("/overlay/\(north.key)").status == .unauthorized)
            let status = try await team.editor.get("/api/v1/communities/\(north.id)")
            let key = try #require(status.json["overlay_key"] as? [String: any Sendable])
            #expect(key["current_prefix"] as? String == String(fresh.prefix(8)))
            #expect(!status.text.contains(fresh))
            #expect(try await team.viewer.post("/api/v1/communities/\(north.id)/overlay_key/rotate").status == .forbidden)
        }
    }
}
