import Foundation
import HubCore
import HubTestSupport
import HummingbirdTesting
import StreamHub
import Testing

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
}
