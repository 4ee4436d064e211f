import Foundation
import HubCore
import HubTestSupport
import HummingbirdTesting
import NIOCore
import StreamHub
import Testing
@testable import Wall

@Suite struct WallAPITests {
    @Test(arguments: TestDatabases.available)
    func wallsAreCreatedFilledAndCleared(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let stream = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/wall_one","city":"Omaha"}"#)
            let streamID = try #require(stream.json["id"] as? Int)
            let fallback = try #require(try await team.editor.post("/api/v1/streams", #"{"link":"https://example.org/fallback.m3u8"}"#).json["id"] as? Int)

            let created = try await team.editor.post("/api/v1/walls", #"{"name":"newsroom","columns":3,"rows":2,"title":"Night desk"}"#)
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/api/v1/walls/newsroom")
            #expect(created.json["columns"] as? Int == 3 && created.json["rows"] as? Int == 2)
            #expect((created.json["cells"] as? [[String: Any]])?.count == 6, "every cell of the grid is listed")
            #expect(try await team.editor.post("/api/v1/walls", #"{"name":"newsroom"}"#).status == .conflict)

            let set = try await team.editor.put("/api/v1/walls/newsroom/cells/2",
                                                #"{"stream_id":\#(streamID),"fallback_stream_id":\#(fallback),"rotation":90,"blurred":true}"#)
            #expect(set.status == .ok, "\(set.text)")
            let cells = try #require(set.json["cells"] as? [[String: Any]])
            #expect(cells[1]["stream_id"] as? Int == streamID && cells[1]["fallback_stream_id"] as? Int == fallback)
            #expect(cells[1]["rotation"] as? Int == 90 && cells[1]["blurred"] as? Bool == true)
            #expect(cells[1]["updated_by"] as? String == "user:editor@example.org")
            #expect(cells[0]["stream_id"] is NSNull)

            let audio = try await team.editor.put("/api/v1/walls/newsroom/audio", #"{"cell":2,"volume":0.5}"#)
            #expect((audio.json["audio"] as? [String: Any])?["cell"] as? Int == 2)
            let url = try await team.editor.put("/api/v1/walls/newsroom/cells/6", #"{"url":"https://example.org/live/index.m3u8"}"#)
            #expect((url.json["cells"] as? [[String: Any]])?[5]["url"] as? String == "https://example.org/live/index.m3u8")

            // Viewers read, and only read.
            let read = try await team.viewer.get("/api/v1/walls/newsroom")
            #expect(read.status == .ok && read.json["version"] as? Int == 4)
            #expect((try await team.viewer.get("/api/v1/walls").json["walls"] as? [Any])?.count == 1)
            #expect(try await team.viewer.put("/api/v1/walls/newsroom/cells/1", #"{"stream_id":\#(streamID)}"#).status == .forbidden)
            #expect(try await team.anonymous.get("/api/v1/walls/newsroom").status == .unauthorized)

            // Clearing the audible cell takes the audio away; shrinking keeps cells in their row and column.
            let cleared = try await team.editor.delete("/api/v1/walls/newsroom/cells/2")
            #expect((cleared.json["audio"] as? [String: Any])?["cell"] is NSNull)
            _ = try await team.editor.put("/api/v1/walls/newsroom/cells/5", #"{"stream_id":\#(streamID)}"#)
            let shrunk = try await team.editor.patch("/api/v1/walls/newsroom", #"{"columns":2}"#)
            let after = try #require(shrunk.json["cells"] as? [[String: Any]])
            #expect(after.count == 4)
            #expect(after[3]["stream_id"] as? Int == streamID, "row 2, column 2 was cell 5 and is now cell 4")
            #expect(after.allSatisfy { $0["url"] is NSNull }, "cell 6 (row 2, column 3) is gone")

            #expect(try await team.editor.delete("/api/v1/walls/newsroom").status == .noContent)
            #expect(try await team.viewer.get("/api/v1/walls/newsroom").status == .notFound)
        }
    }

    @Test func badInputGetsClearErrorsAndChangesNothing() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            _ = try await team.editor.post("/api/v1/walls", #"{"name":"desk","columns":2,"rows":2}"#)
            let before = try await team.viewer.get("/api/v1/walls/desk").text
            let cases: [(String, String, String, Int)] = [
                ("POST", "/api/v1/walls", #"{"name":"Bad Name"}"#, 422),
                ("POST", "/api/v1/walls", #"{"name":"-x"}"#, 422),
                ("POST", "/api/v1/walls", #"{"name":"big","columns":11}"#, 422),
                ("POST", "/api/v1/walls", #"{"name":"neg","rows":0}"#, 422),
                ("POST", "/api/v1/walls", #"{"name":"t","columns":"3"}"#, 400),
                ("POST", "/api/v1/walls", #"{"name":"#, 400),
                ("POST", "/api/v1/walls", #"{"name":"x","title":"\#(String(repeating: "t", count: 201))"}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"stream_id":1,"url":"https://example.org/a.m3u8"}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"stream_id":999999}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"stream_id":"1"}"#, 400),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"recording_id":"0123456789abcdef0123456789abcdef"}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"recording_id":"../../etc/passwd"}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"url":"javascript:alert(1)"}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"url":"https://user:pass@example.org/a.m3u8"}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"url":"https://example.org/a.m3u8","rotation":45}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"url":"https://example.org/a.m3u8","rewind_seconds":-1}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/5", #"{"url":"https://example.org/a.m3u8"}"#, 404),
                ("PUT", "/api/v1/walls/desk/cells/0", #"{"url":"https://example.org/a.m3u8"}"#, 404),
                ("PUT", "/api/v1/walls/desk/cells/abc", #"{"url":"https://example.org/a.m3u8"}"#, 404),
                ("PUT", "/api/v1/walls/nowhere/cells/1", #"{"url":"https://example.org/a.m3u8"}"#, 404),
                ("PUT", "/api/v1/walls/desk/audio", #"{"cell":9}"#, 404),
                ("PUT", "/api/v1/walls/desk/audio", #"{"volume":2}"#, 422),
                ("PUT", "/api/v1/walls/desk/audio", #"[1,2]"#, 400),
                ("PATCH", "/api/v1/walls/desk", #"{"rows":99}"#, 422),
                ("PUT", "/api/v1/walls/desk/cells/1", #"{"url":"https://example.org/\#(String(repeating: "a", count: 20_000))"}"#, 413),
            ]
            for (method, path, body, status) in cases {
                let response = try await team.editor.call(.init(method)!, path, json: body)
                #expect(response.status.code == status, "\(method) \(path) \(body.prefix(80)) → \(response.status) \(response.text.prefix(200))")
                let error = response.json["error"] as? [String: Any]
                #expect(error?["code"] is String && (error?["message"] as? String)?.isEmpty == false, "\(path): \(response.text.prefix(200))")
            }
            #expect(try await team.viewer.get("/api/v1/walls/desk").text == before, "nothing changed")
        }
    }

    @Test(arguments: TestDatabases.available)
    func operatorsEditingDifferentCellsAtOnceKeepBothChanges(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            _ = try await team.editor.post("/api/v1/walls", #"{"name":"busy","columns":4,"rows":4}"#)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for cell in 1...16 {
                    let who = cell % 2 == 0 ? team.editor : team.admin
                    group.addTask {
                        let response = try await who.put("/api/v1/walls/busy/cells/\(cell)", #"{"url":"https://example.org/\#(cell).m3u8"}"#)
                        #expect(response.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            let wall = try await team.viewer.get("/api/v1/walls/busy")
            let cells = try #require(wall.json["cells"] as? [[String: Any]])
            #expect(cells.map { $0["url"] as? String } == (1...16).map { "https://example.org/\($0).m3u8" })
            #expect(wall.json["version"] as? Int == 17)
        }
    }

    @Test func everyChangeIsAWallChangedEventForViewersOnly() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let viewer = WebSocketProbe(port: client.port!, path: "/events?types=wall_changed&token=\(team.viewer.token!)")
            viewer.send(#"{"subscribe":["wall_changed"]}"#)
            #expect(try await viewer.nextJSON()["event"] as? String == "subscribed")
            let service = WebSocketProbe(port: client.port!, path: "/events?key=\(testServiceKey)")
            service.send(#"{"subscribe":["*"]}"#)
            #expect(try await service.nextJSON()["event"] as? String == "subscribed")

            _ = try await team.editor.post("/api/v1/walls", #"{"name":"live","columns":2,"rows":1}"#)
            _ = try await team.editor.put("/api/v1/walls/live/cells/2", #"{"url":"https://example.org/x.m3u8"}"#)
            let created = try await viewer.nextJSON()
            #expect(created["wall"] as? String == "live" && (created["change"] as? [String: Any])?["op"] as? String == "created")
            let changed = try await viewer.nextJSON()
            #expect((changed["change"] as? [String: Any])?["op"] as? String == "cell_set")
            #expect((changed["change"] as? [String: Any])?["cell"] as? Int == 2)
            #expect(((changed["state"] as? [String: Any])?["cells"] as? [[String: Any]])?[1]["url"] as? String == "https://example.org/x.m3u8")
            #expect(changed["by"] as? String == "user:editor@example.org")

            // A service key is not a wall audience: it sees the sentinel and nothing before it.
            app.bus.publish(type: "test_sentinel", payload: .init(string: "{}"), visibility: .everyone)
            #expect(try await service.nextJSON()["event"] as? String == "test_sentinel")
            await viewer.close()
            await service.close()
        }
    }

    @Test func invitesAndDisplayLinksAreScopedToTheirWall() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let streamID = try #require(try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/linked"}"#).json["id"] as? Int)
            for name in ["alpha", "beta"] { _ = try await team.editor.post("/api/v1/walls", #"{"name":"\#(name)","columns":2,"rows":2}"#) }

            let invite = try await team.editor.post("/api/v1/walls/alpha/invites", #"{"role":"operator","max_uses":2,"label":"night crew"}"#)
            #expect(invite.status == .created, "\(invite.text)")
            let operatorToken = try #require(invite.json["token"] as? String)
            #expect(operatorToken.hasPrefix("shw_") && operatorToken.count == 68)
            #expect(invite.json["url"] as? String == "/wall/alpha/control?token=\(operatorToken)")
            #expect(invite.json["role"] as? String == "operator" && invite.json["uses"] as? Int == 0)
            let operatorClient = APIClient(client, token: operatorToken)
            let set = try await operatorClient.put("/api/v1/walls/alpha/cells/1", #"{"stream_id":\#(streamID)}"#)
            #expect(set.status == .ok, "\(set.text)")
            #expect(((set.json["cells"] as? [[String: Any]])?[0]["updated_by"] as? String)?.hasPrefix("wall_link:invite") == true)
            #expect(try await operatorClient.put("/api/v1/walls/beta/cells/1", #"{"stream_id":\#(streamID)}"#).status == .forbidden)
            #expect(try await operatorClient.put("/api/v1/walls/alpha/audio", #"{"cell":1}"#).status == .ok)
            #expect(try await operatorClient.get("/api/v1/streams").status == .ok, "an invite reads like a viewer")
            #expect(try await operatorClient.post("/api/v1/walls", #"{"name":"mine"}"#).status == .forbidden)
            #expect(try await operatorClient.patch("/api/v1/walls/alpha", #"{"rows":1}"#).status == .forbidden)
            #expect(try await operatorClient.post("/api/v1/walls/alpha/invites", #"{"role":"operator"}"#).status == .forbidden)

            let viewerToken = try #require(try await team.editor.post("/api/v1/walls/alpha/invites", #"{"role":"viewer"}"#).json["token"] as? String)
            let viewerClient = APIClient(client, token: viewerToken)
            #expect(try await viewerClient.get("/api/v1/walls/alpha").status == .ok)
            #expect(try await viewerClient.delete("/api/v1/walls/alpha/cells/1").status == .forbidden)

            let display = try await team.editor.post("/api/v1/walls/alpha/displays")
            #expect(display.status == .created, "\(display.text)")
            let displayToken = try #require(display.json["token"] as? String)
            #expect(display.json["url"] as? String == "/wall/alpha?token=\(displayToken)" && display.json["expires_at"] is NSNull)
            let displayClient = APIClient(client, token: displayToken)
            #expect(try await displayClient.get("/api/v1/walls/alpha").status == .ok)
            #expect(try await displayClient.get("/api/v1/walls/beta").status == .forbidden)
            #expect(try await displayClient.get("/api/v1/walls").status == .forbidden)
            #expect(try await displayClient.get("/api/v1/streams").status == .forbidden, "a display watches its wall only")
            #expect(try await displayClient.put("/api/v1/walls/alpha/cells/2", #"{"stream_id":\#(streamID)}"#).status == .forbidden)

            // On /events a display receives its wall's changes and nothing else.
            let socket = WebSocketProbe(port: client.port!, path: "/events?token=\(displayToken)")
            socket.send(#"{"subscribe":["*"]}"#)
            #expect(try await socket.nextJSON()["event"] as? String == "subscribed")
            _ = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/not_for_displays"}"#)
            _ = try await team.editor.put("/api/v1/walls/beta/cells/2", #"{"stream_id":\#(streamID)}"#)
            _ = try await operatorClient.put("/api/v1/walls/alpha/cells/2", #"{"stream_id":\#(streamID),"blurred":true}"#)
            let frame = try await socket.nextJSON()
            #expect(frame["event"] as? String == "wall_changed" && frame["wall"] as? String == "alpha", "\(frame)")
            app.bus.publish(type: "test_sentinel", payload: ByteBuffer(string: "{}"), visibility: .everyone)
            #expect(try await socket.nextJSON()["event"] as? String == "test_sentinel", "nothing else reached the display")

            // Listed without tokens; revoking closes the display's socket and refuses its token at once.
            let listed = try #require(try await team.editor.get("/api/v1/walls/alpha/links").json["links"] as? [[String: Any]])
            #expect(listed.count == 3 && listed.allSatisfy { $0["token"] == nil && ($0["prefix"] as? String)?.hasPrefix("shw_") == true })
            let displayID = try #require(display.json["id"] as? Int)
            // Timed from the acknowledged revocation (the request may queue behind other suites on a busy machine).
            #expect(try await team.editor.delete("/api/v1/walls/alpha/links/\(displayID)").status == .noContent)
            let started = ContinuousClock.now
            #expect(try await socket.closeFrame(within: 2)?.closeCode == .unknown(4401))
            #expect(ContinuousClock.now - started < .seconds(1))
            #expect(try await displayClient.get("/api/v1/walls/alpha").status == .unauthorized)
            #expect(try await team.editor.delete("/api/v1/walls/beta/links/\(displayID)").status == .notFound)

            // Uses: an invite with max_uses 2 starts two sessions, not three.
            #expect(try await app.wall.links.use(operatorToken)?.uses == 1)
            #expect(try await app.wall.links.use(operatorToken)?.uses == 2)
            #expect(try await app.wall.links.use(operatorToken) == nil)

            // An expired invite is refused like a bad token.
            let (_, expired) = try await app.wall.links.create(wall: "alpha", kind: .invite, access: .operator, label: nil,
                                                               expiresAt: Timestamp.now() - 1, maxUses: nil, by: "test")
            #expect(try await APIClient(client, token: expired).get("/api/v1/walls/alpha").status == .unauthorized)
            #expect(try await WebSocketProbe(port: client.port!, path: "/events?token=\(expired)").closeFrame()?.closeCode == .unknown(4401))

            // Bad input.
            for (path, body, status) in [
                ("/api/v1/walls/alpha/invites", #"{"role":"admin"}"#, 422), ("/api/v1/walls/alpha/invites", #"{"role":"display"}"#, 422),
                ("/api/v1/walls/alpha/invites", #"{"role":"viewer","expires_in":10}"#, 422),
                ("/api/v1/walls/alpha/invites", #"{"role":"viewer","max_uses":0}"#, 422),
                ("/api/v1/walls/alpha/invites", #"{"role":1}"#, 400), ("/api/v1/walls/alpha/invites", #"{"role":"#, 400),
                ("/api/v1/walls/nowhere/invites", #"{"role":"viewer"}"#, 404), ("/api/v1/walls/alpha/displays", #"{"label":5}"#, 400),
            ] {
                let response = try await team.editor.post(path, body)
                #expect(response.status.code == status, "\(path) \(body) → \(response.status) \(response.text)")
            }
            #expect(try await team.viewer.post("/api/v1/walls/alpha/displays").status == .forbidden)
            #expect(try await APIClient(client, token: "shw_" + String(repeating: "0", count: 64)).get("/api/v1/walls/alpha").status == .unauthorized)
        }
    }
}
