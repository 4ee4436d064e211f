import Foundation
import HubTestSupport
import Registry
import StreamHub
import Testing

@Suite struct StreamersTests {
    @Test(arguments: TestDatabases.available)
    func streamersOwnStreamsAndMerge(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let ada = try await team.editor.post("/api/v1/streamers", #"{"name":"Ada","accounts":[{"platform":"twitch","handle":"ada","link":"https://twitch.tv/ada"}]}"#)
            #expect(ada.status == .created)
            let adaID = try #require(ada.json["id"] as? Int)
            let alias = try await team.editor.post("/api/v1/streamers", #"{"name":"Ada L.","accounts":[{"platform":"youtube","handle":"@ada"}]}"#)
            let aliasID = try #require(alias.json["id"] as? Int)
            let taken = try await team.editor.post("/api/v1/streamers", #"{"name":"Impostor","accounts":[{"platform":"twitch","handle":"ada"}]}"#)
            #expect(taken.status == .conflict)

            let s1 = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/ada","streamer_id":\#(adaID)}"#)
            #expect(s1.json["streamer_id"] as? Int == adaID)
            let s2 = try await team.editor.post("/api/v1/streams", #"{"link":"https://youtube.com/@ada/live","streamer_id":\#(aliasID)}"#)
            #expect(s2.status == .created)

            let page = try await team.viewer.get("/api/v1/streamers/\(adaID)")
            #expect((page.json["streams"] as? [Any])?.count == 1)
            #expect((page.json["accounts"] as? [[String: any Sendable]])?.first?["handle"] as? String == "ada")

            #expect(try await team.editor.post("/api/v1/streamers/\(adaID)/merge", #"{"from_id":\#(aliasID)}"#).status == .forbidden)
            let merged = try await team.admin.post("/api/v1/streamers/\(adaID)/merge", #"{"from_id":\#(aliasID)}"#)
            #expect(merged.status == .ok)
            #expect((merged.json["streams"] as? [Any])?.count == 2)
            #expect((merged.json["accounts"] as? [Any])?.count == 2)
            #expect(try await team.viewer.get("/api/v1/streamers/\(aliasID)").status == .notFound)

            let renamed = try await team.editor.patch("/api/v1/streamers/\(adaID)", #"{"name":"Ada Lovelace","notes":"runs the bridge cam"}"#)
            #expect(renamed.json["name"] as? String == "Ada Lovelace")
            let listed = try await team.viewer.get("/api/v1/streamers?q=lovelace")
            #expect((listed.json["streamers"] as? [Any])?.count == 1)

            #expect(try await team.admin.delete("/api/v1/streamers/\(adaID)").status == .noContent)
            let orphan = try await team.viewer.get("/api/v1/streams/\(s1.json["id"] as? Int ?? 0)")
            #expect(orphan.json["streamer_id"] is NSNull, "deleting a streamer keeps their streams")
        }
    }
}
