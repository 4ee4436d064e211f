import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import Registry
import StreamHub
import Testing

@Suite struct DiscoveryAPITests {
    static func message(_ text: String, source: String = "discord", channel: String = "links", author: String = "volunteer1") -> String {
        JSONText.object([("source", .string(source)), ("channel", .string(channel)), ("author", .string(author)), ("text", .string(text)),
                         ("posted_at", .string("2026-11-26T01:02:03Z"))])
    }

    @Test(arguments: TestDatabases.available)
    func messagesBecomeStreamsWithPlatformLocationAndPoster(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let cable = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.viewer.token!)")
            defer { Task { await cable.close() } }
            #expect(try await cable.nextJSON()["event"] as? String == "welcome")
            let posted = try await team.editor.post("/api/v1/discovery/messages",
                Self.message("LIVE from Minneapolis, MN: https://www.twitch.tv/Mpls_Live and https://youtu.be/dQw4w9WgXcQ?si=x", author: "Ada"))
            #expect(posted.status == .ok, "\(posted.text)")
            let links = try #require(posted.json["links"] as? [[String: Any]])
            #expect(links.map { $0["link"] as? String } == ["https://twitch.tv/mpls_live", "https://youtube.com/watch?v=dQw4w9WgXcQ"])
            #expect(links.map { $0["outcome"] as? String } == ["created", "created"])
            let id = try #require(links.first?["stream_id"] as? Int)
            let stream = try await team.viewer.get("/api/v1/streams/\(id)")
            #expect(stream.json["platform"] as? String == "twitch")
            #expect(stream.json["city"] as? String == "Minneapolis")
            #expect(stream.json["state"] as? String == "MN")
            #expect(stream.json["posted_by"] as? String == "Ada")
            #expect(stream.json["source"] as? String == "mpls_live")
            var discovered: [[String: Any]] = []
            while discovered.count < 2 {
                let event = try await cable.nextJSON()
                if event["event"] as? String == "stream_discovered" { discovered.append(event) }
            }
            #expect(discovered.compactMap { $0["outcome"] as? String } == ["created", "created"])
            let again = try await team.editor.post("/api/v1/discovery/messages", Self.message("again https://twitch.tv/mpls_live"))
            #expect((again.json["links"] as? [[String: Any]])?.first?["outcome"] as? String == "existing")
            // An archived stream comes back when it is posted again.
            #expect(try await team.editor.patch("/api/v1/streams/\(id)", #"{"is_archived":true}"#).status == .ok)
            let revived = try await team.editor.post("/api/v1/discovery/messages", Self.message("back: twitch.tv/mpls_live"))
            #expect((revived.json["links"] as? [[String: Any]])?.first?["outcome"] as? String == "unarchived")
            #expect(try await team.viewer.get("/api/v1/streams/\(id)").json["is_archived"] as? Bool == false)
            let sightings = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM stream_sightings WHERE stream_id = \(bind: id)").first()?
                .decode(column: "n", as: Int.self)
            #expect(sightings == 3)
            // A message without stream links changes nothing.
            let none = try await team.editor.post("/api/v1/discovery/messages", Self.message("see https://example.com and mail me@example.com"))
            #expect((none.json["links"] as? [Any])?.isEmpty == true)
            #expect(try await team.viewer.get("/api/v1/streams").json["meta"].flatMap { ($0 as? [String: Any])?["total_count"] as? Int } == 2)
        }
    }

    @Test(arguments: TestDatabases.available)
    func theSameLinkPostedManyTimesAtOnceMakesOneStream(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let editor = team.editor
            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        let link = index % 2 == 0 ? "https://www.twitch.tv/Raced" : "twitch.tv/raced?utm_source=x"
                        let response = try await editor.post("/api/v1/discovery/messages", Self.message("go \(link)", author: "poster\(index)"))
                        return (response.json["links"] as? [[String: Any]])?.first?["outcome"] as? String ?? "status \(response.status.code)"
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == "created" }.count == 1, "\(outcomes)")
            #expect(outcomes.filter { $0 == "existing" }.count == 15, "\(outcomes)")
            let count = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM streams").first()?.decode(column: "n", as: Int.self)
            #expect(count == 1)
        }
    }

    /// A message the chat service has given an id is ingested once however often it arrives — a gateway
    /// replaying on resume, a connector taken over by another instance, the same message from two instances
    /// at once.
    @Test(arguments: TestDatabases.available)
    func aMessageWithAnIdIsIngestedOnce(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let editor = team.editor
            func withID(_ id: String, channel: String = "links") -> String {
                JSONText.object([("source", .string("discord")), ("channel", .string(channel)), ("author", .string("ada")),
                                 ("text", .string("live https://twitch.tv/once_only")), ("message_id", .string(id))])
            }
            let answers = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 {
                    group.addTask { (try await editor.post("/api/v1/discovery/messages", withID("1180000000000000001")).json["links"] as? [Any])?.count ?? -1 }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(answers.sorted() == [0, 0, 0, 0, 0, 1], "one ingest, five repeats answered with no links: \(answers)")
            func sightings() async throws -> Int? {
                try await app.database.sql.raw("SELECT COUNT(*) AS n FROM stream_sightings").first()?.decode(column: "n", as: Int.self)
            }
            #expect(try await sightings() == 1)
            // The same id in another channel is another message; messages without an id are each a sighting.
            #expect((try await editor.post("/api/v1/discovery/messages", withID("1180000000000000001", channel: "other")).json["links"] as? [Any])?.count == 1)
            _ = try await editor.post("/api/v1/discovery/messages", Self.message("live https://twitch.tv/once_only"))
            _ = try await editor.post("/api/v1/discovery/messages", Self.message("live https://twitch.tv/once_only"))
            #expect(try await sightings() == 4)
            let metrics = try await team.admin.get("/metrics")
            #expect(metrics.text.contains("streamhub_discovery_duplicate_messages_total 5"), "\(metrics.text.split(separator: "\n").filter { $0.contains("duplicate") })")
            for bad in ["", "has space", String(repeating: "9", count: 201)] {
                #expect(try await editor.post("/api/v1/discovery/messages", withID(bad)).errorCode == "validation_failed", "\(bad)")
            }
            #expect(try await editor.post("/api/v1/discovery/messages", #"{"source":"discord","text":"x https://twitch.tv/a","message_id":5}"#).errorCode == "invalid_json")
            #expect(try await sightings() == 4, "nothing stored by the refused ones")
        }
    }

    @Test func ignoreListsAreCheckedBeforeAnythingIsCreated() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            #expect(try await team.editor.post("/api/v1/ignore_lists", #"{"type":"url","value":"https://www.twitch.tv/Spammer"}"#).status == .created)
            #expect(try await team.editor.post("/api/v1/ignore_lists", #"{"type":"domain","value":"*.kick.com"}"#).status == .created)
            #expect(try await team.editor.post("/api/v1/ignore_lists", #"{"type":"author","value":"@TrollUser"}"#).status == .created)
            let imported = try await team.editor.post("/api/v1/ignore_lists/import",
                ##"{"type":"channel","values":["#offtopic","memes","memes"," "],"note":"not for links"}"##)
            #expect(imported.status == .ok, "\(imported.text)")
            #expect(imported.json["added"] as? Int == 2)
            #expect(imported.json["existing"] as? Int == 1)
            #expect((imported.json["invalid"] as? [Any])?.count == 1)
            let dry = try await team.editor.post("/api/v1/ignore_lists/import?dry_run=true", #"{"entries":[{"type":"twitch_user","value":"bot"}]}"#)
            #expect(dry.json["added"] as? Int == 1)
            let byType = try await team.viewer.get("/api/v1/ignore_lists/by_type")
            #expect(byType.json["urls"] as? [String] == ["https://twitch.tv/spammer"])
            #expect(byType.json["domains"] as? [String] == ["kick.com"])
            #expect(byType.json["twitch_users"] as? [String] == ["trolluser"])
            #expect(byType.json["discord_users"] as? [String] == ["trolluser"])
            #expect(byType.json["channels"] as? [String] == ["memes", "offtopic"])

            func outcome(_ text: String, author: String = "someone", channel: String = "links") async throws -> [String?] {
                let response = try await team.editor.post("/api/v1/discovery/messages", Self.message(text, channel: channel, author: author))
                return (response.json["links"] as? [[String: Any]] ?? []).map { link in
                    (link["outcome"] as? String).map { $0 + ":" + ((link["reason"] as? String) ?? "") }
                }
            }
            #expect(try await outcome("twitch.tv/spammer") == ["ignored:url"])
            #expect(try await outcome("https://kick.com/anyone") == ["ignored:domain"])
            #expect(try await outcome("twitch.tv/fine_one", author: "TrollUser") == ["ignored:author"])
            #expect(try await outcome("twitch.tv/fine_one", channel: "#MEMES") == ["ignored:channel"])
            #expect(try await outcome("twitch.tv/fine_one") == ["created:"])
            let count = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM streams").first()?.decode(column: "n", as: Int.self)
            #expect(count == 1)

            let list = try await team.viewer.get("/api/v1/ignore_lists?type=url")
            let entry = try #require((list.json["entries"] as? [[String: Any]])?.first)
            #expect(entry["created_by"] as? String == "user:editor@example.org")
            #expect(try await team.editor.delete("/api/v1/ignore_lists/\(entry["id"] as? Int ?? 0)").status == .noContent)
            #expect(try await outcome("twitch.tv/spammer") == ["created:"])
        }
    }

    @Test func badInputGetsClearErrorsAndChangesNothing() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            _ = try await team.editor.post("/api/v1/discovery/messages", Self.message("twitch.tv/keeper_one"))
            let path = "/api/v1/discovery/messages"
            let cases: [(APIClient, String, HTTPResponse.Status)] = [
                (team.editor, "{not json", .badRequest),
                (team.editor, #"{"source":"discord"}"#, .badRequest),
                (team.editor, #"{"source":5,"text":"twitch.tv/abc_def"}"#, .badRequest),
                (team.editor, #"{"source":"Discord!","text":"twitch.tv/abc_def"}"#, .unprocessableContent),
                (team.editor, #"{"source":"discord","text":"   "}"#, .unprocessableContent),
                (team.editor, #"{"source":"discord","text":"twitch.tv/abc_def","posted_at":"yesterday"}"#, .badRequest),
                (team.editor, #"{"source":"discord","text":"twitch.tv/abc_def","posted_at":1e300}"#, .unprocessableContent),
                (team.editor, #"{"source":"discord","text":"twitch.tv/abc_def","posted_at":-5}"#, .unprocessableContent),
                (team.editor, #"{"source":"discord","text":"\#(String(repeating: "x", count: 8001))"}"#, .unprocessableContent),
                (team.editor, #"{"source":"discord","author":"\#(String(repeating: "a", count: 201))","text":"twitch.tv/abc_def"}"#, .unprocessableContent),
                (team.editor, "[1,2,3]", .badRequest),
                (team.viewer, Self.message("twitch.tv/abc_def"), .forbidden),
                (team.anonymous, Self.message("twitch.tv/abc_def"), .unauthorized),
                (team.editor.signedIn("forged.token.value"), Self.message("twitch.tv/abc_def"), .unauthorized),
                (team.editor.signedIn("shk_" + String(repeating: "0", count: 64)), Self.message("twitch.tv/abc_def"), .unauthorized),
            ]
            for (caller, body, status) in cases {
                let response = try await caller.post(path, body)
                #expect(response.status == status, "\(body.prefix(80)) → \(response.status) \(response.text.prefix(200))")
                #expect(response.errorCode != nil, "\(body.prefix(80)) has the JSON error shape")
            }
            let oversized = try await team.editor.post(path, #"{"source":"discord","text":"\#(String(repeating: "y", count: 70_000))"}"#)
            #expect(oversized.status == .contentTooLarge)

            let ignoreCases: [(String, String, HTTPResponse.Status)] = [
                ("/api/v1/ignore_lists", #"{"type":"planet","value":"x"}"#, .unprocessableContent),
                ("/api/v1/ignore_lists", #"{"type":"domain","value":"not a domain"}"#, .unprocessableContent),
                ("/api/v1/ignore_lists", #"{"type":"url","value":"javascript:alert(1)"}"#, .unprocessableContent),
                ("/api/v1/ignore_lists", #"{"type":"url"}"#, .badRequest),
                ("/api/v1/ignore_lists/import", #"{"values":["a"]}"#, .unprocessableContent),
                ("/api/v1/ignore_lists/import", #"{}"#, .unprocessableContent),
            ]
            for (path, body, status) in ignoreCases {
                let response = try await team.editor.post(path, body)
                #expect(response.status == status, "\(path) \(body) → \(response.status) \(response.text)")
            }
            #expect(try await team.editor.post("/api/v1/ignore_lists", #"{"type":"domain","value":"spam.example"}"#).status == .created)
            #expect(try await team.editor.post("/api/v1/ignore_lists", #"{"type":"domain","value":"SPAM.example"}"#).status == .conflict)
            #expect(try await team.viewer.post("/api/v1/ignore_lists", #"{"type":"domain","value":"x.example"}"#).status == .forbidden)
            #expect(try await team.editor.delete("/api/v1/ignore_lists/999999").status == .notFound)
            #expect(try await team.editor.delete("/api/v1/ignore_lists/abc").status == .notFound)
            #expect(try await team.viewer.get("/api/v1/ignore_lists?type=planet").status == .unprocessableContent)
            #expect(try await team.viewer.get("/api/v1/ignore_lists?per_page=0").status == .unprocessableContent)

            let streams = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM streams").first()?.decode(column: "n", as: Int.self)
            #expect(streams == 1, "bad input created nothing")
            let entries = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM ignore_entries").first()?.decode(column: "n", as: Int.self)
            #expect(entries == 1)
        }
    }
}
