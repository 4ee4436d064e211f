import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
@testable import Registry
import StreamHub
import Testing

/// The ids of the streams in a list answer.
func ids(_ response: APIResponse) -> [Int] {
    ((response.json["streams"] as? [[String: any Sendable]]) ?? []).compactMap { $0["id"] as? Int }
}

func createStream(_ api: APIClient, _ body: String) async throws -> [String: any Sendable] {
    let response = try await api.post("/api/v1/streams", body)
    guard response.status == .created else { throw TestFailure("create failed: \(response.status) \(response.text)") }
    return response.json
}

@Suite struct StreamsAPITests {
    @Test(arguments: TestDatabases.available)
    func createReadUpdateDelete(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let created = try await team.editor.post("/api/v1/streams", """
                {"link":"HTTPS://WWW.Twitch.tv/SomeStreamer/?utm_source=x&si=abc#chat","source":"SomeStreamer","city":"Portland","state":"OR","notes":["first","second"],"status":"LIVE"}
                """)
            #expect(created.status == .created)
            let stream = created.json
            let id = try #require(stream["id"] as? Int)
            #expect(stream["link"] as? String == "HTTPS://WWW.Twitch.tv/SomeStreamer/?utm_source=x&si=abc#chat", "kept as posted")
            #expect(stream["platform"] as? String == "twitch")
            #expect(stream["status"] as? String == "live")
            #expect(stream["notes"] as? String == "first\nsecond")
            #expect(stream["posted_by"] as? String == "editor@example.org")
            #expect(stream["is_archived"] as? Bool == false)
            #expect(stream["started_at"] is String)
            #expect(stream["last_live_at"] is String)
            for field in ["title", "last_checked_at", "ended_at", "orientation", "streamer_id"] {
                #expect(stream.keys.contains(field), "field \(field) must be present, even when null")
            }
            #expect(created.headers[.eTag] != nil)

            let read = try await team.viewer.get("/api/v1/streams/\(id)")
            #expect(read.status == .ok)
            #expect(read.json["source"] as? String == "SomeStreamer")

            let patched = try await team.editor.patch("/api/v1/streams/\(id)", #"{"title":"Downtown march","postedBy":"bot","city":""}"#)
            #expect(patched.status == .ok)
            #expect(patched.json["title"] as? String == "Downtown march")
            #expect(patched.json["posted_by"] as? String == "bot")
            #expect(patched.json["city"] is NSNull)
            #expect((patched.json["version"] as? Int ?? 0) > (stream["version"] as? Int ?? 0))

            #expect(try await team.editor.delete("/api/v1/streams/\(id)").status == .forbidden)
            #expect(try await team.admin.delete("/api/v1/streams/\(id)").status == .noContent)
            let gone = try await team.viewer.get("/api/v1/streams/\(id)")
            #expect(gone.status == .notFound)
            #expect(gone.errorCode == "not_found")
        }
    }

    @Test(arguments: TestDatabases.available)
    func duplicatesConflictAndArchivedOnesComeBack(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let first = try await createStream(team.editor, #"{"link":"https://www.youtube.com/watch?v=abc123&feature=share"}"#)
            let id = try #require(first["id"] as? Int)
            let duplicate = try await team.editor.post("/api/v1/streams", #"{"url":"youtube.com/watch?v=abc123"}"#)
            #expect(duplicate.status == .conflict)
            #expect(duplicate.errorCode == "duplicate_link")
            #expect(duplicate.text.contains("\(id)"))

            let archived = try await team.editor.post("/api/v1/streams/\(id)/archive")
            #expect(archived.json["is_archived"] as? Bool == true)
            #expect(archived.json["ended_at"] is String)
            let revived = try await team.editor.post("/api/v1/streams", #"{"link":"https://youtube.com/watch?v=abc123","city":"Austin"}"#)
            #expect(revived.status == .ok)
            #expect(revived.json["id"] as? Int == id)
            #expect(revived.json["is_archived"] as? Bool == false)
            #expect(revived.json["city"] as? String == "Austin")
            let count = try await team.viewer.get("/api/v1/streams?is_archived=any")
            #expect((count.json["meta"] as? [String: any Sendable])?["total_count"] as? Int == 1)
        }
    }

    @Test(arguments: TestDatabases.available)
    func filtersSearchSortAndPaging(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            var made: [Int] = []
            for index in 0..<7 {
                let status = index % 2 == 0 ? "live" : "offline"
                let city = index < 3 ? "Chicago" : "Denver"
                let body = #"{"link":"https://kick.com/streamer\#(index)","source":"Streamer \#(index)","status":"\#(status)","city":"\#(city)","state":"IL","notes":"note \#(index == 5 ? "needle" : "hay")"}"#
                made.append(try #require(try await createStream(team.editor, body)["id"] as? Int))
            }
            _ = try await team.editor.put("/api/v1/streams/\(made[1])/pin")
            _ = try await team.editor.post("/api/v1/streams/\(made[6])/archive")

            let all = try await team.viewer.get("/api/v1/streams")
            #expect(ids(all).count == 6, "archived streams are hidden by default")
            let meta = try #require(all.json["meta"] as? [String: any Sendable])
            #expect(meta["total_count"] as? Int == 6)
            #expect(meta["current_page"] as? Int == 1)
            #expect(meta["per_page"] as? Int == 25)
            #expect(meta["total_pages"] as? Int == 1)

            #expect(Set(ids(try await team.viewer.get("/api/v1/streams?status=live"))) == Set([made[0], made[2], made[4]]))
            #expect(Set(ids(try await team.viewer.get("/api/v1/streams?notStatus=live"))) == Set([made[1], made[3], made[5]]))
            #expect(ids(try await team.viewer.get("/api/v1/streams?is_pinned=true")) == [made[1]])
            #expect(ids(try await team.viewer.get("/api/v1/streams?is_archived=true")) == [made[6]])
            #expect(Set(ids(try await team.viewer.get("/api/v1/streams?city=chicago"))) == Set(made[0..<3]))
            #expect(ids(try await team.viewer.get("/api/v1/streams?q=NEEDLE")) == [made[5]])
            #expect(ids(try await team.viewer.get("/api/v1/streams?q=streamer3")) == [], "q does not search links")
            #expect(ids(try await team.viewer.get("/api/v1/streams?search=kick.com/streamer3")) == [made[3]])
            #expect(ids(try await team.viewer.get("/api/v1/streams?link=HTTPS://KICK.COM/Streamer2/")) == [made[2]])
            #expect(ids(try await team.viewer.get("/api/v1/streams?sort=id")) == Array(made[0..<6]))
            let page2 = try await team.viewer.get("/api/v1/streams?sort=id&per_page=4&page=2")
            #expect(ids(page2) == [made[4], made[5]])
            #expect((page2.json["meta"] as? [String: any Sendable])?["total_pages"] as? Int == 2)
            let beyond = try await team.viewer.get("/api/v1/streams?page=9")
            #expect(ids(beyond) == [])
            #expect((beyond.json["meta"] as? [String: any Sendable])?["total_count"] as? Int == 6)
        }
    }

    @Test func listETagAnswers304UntilSomethingChanges() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            _ = try await createStream(team.editor, #"{"link":"https://twitch.tv/one"}"#)
            let first = try await team.viewer.get("/api/v1/streams")
            let etag = try #require(first.headers[.eTag])
            let again = try await team.viewer.get("/api/v1/streams", headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            _ = try await createStream(team.editor, #"{"link":"https://twitch.tv/two"}"#)
            let changed = try await team.viewer.get("/api/v1/streams", headers: [.ifNoneMatch: etag])
            #expect(changed.status == .ok)
            #expect(ids(changed).count == 2)
        }
    }

    @Test(arguments: TestDatabases.available)
    func ifMatchRefusesAStaleWrite(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let created = try await team.editor.post("/api/v1/streams", #"{"link":"https://rumble.com/v123-live"}"#)
            let id = try #require(created.json["id"] as? Int)
            let etag = try #require(created.headers[.eTag])
            let first = try await team.editor.patch("/api/v1/streams/\(id)", #"{"title":"A"}"#, headers: [.ifMatch: etag])
            #expect(first.status == .ok)
            let stale = try await team.editor.patch("/api/v1/streams/\(id)", #"{"title":"B"}"#, headers: [.ifMatch: etag])
            #expect(stale.status == .preconditionFailed)
            #expect(stale.errorCode == "stale_write")
            let current = try await team.viewer.get("/api/v1/streams/\(id)")
            #expect(current.json["title"] as? String == "A")
            let noIfMatch = try await team.editor.patch("/api/v1/streams/\(id)", #"{"title":"C"}"#)
            #expect(noIfMatch.status == .ok, "If-Match is optional")
        }
    }

    /// The Streamwall link monitor posts a link, then finds its stream with `?search=<the same link>` and
    /// compares `link` with what it sent: the link is kept as posted, and either form finds the stream.
    @Test(arguments: TestDatabases.available)
    func linksAreKeptAsPostedAndFoundByEitherForm(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let posted = "https://www.twitch.tv/Night_Desk"
            let created = try await team.editor.post("/api/v1/streams", #"{"link":"  \#(posted) "}"#)
            #expect(created.status == .created && created.json["link"] as? String == posted, "trimmed, otherwise as sent")
            let id = try #require(created.json["id"] as? Int)
            for lookup in ["search=\(posted)", "search=https://twitch.tv/night_desk", "search=m.twitch.tv/night_desk", "link=\(posted)",
                           "link=https://twitch.tv/night_desk", "search=Night_Desk"] {
                let found = try await team.viewer.get("/api/v1/streams?" + lookup.replacingOccurrences(of: ":", with: "%3A"))
                let streams = try #require(found.json["streams"] as? [[String: Any]], "\(lookup)")
                #expect(streams.map { $0["id"] as? Int } == [id], "\(lookup)")
                #expect(streams.first?["link"] as? String == posted, "\(lookup)")
            }
            // The canonical form is still the key: the same stream posted another way is a duplicate.
            let again = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/night_desk?utm_source=chat"}"#)
            #expect(again.status == .conflict && again.errorCode == "duplicate_link")
            let youtube = "https://www.youtube.com/live/abcDEF12345?si=share"
            let video = try await team.editor.post("/api/v1/streams", #"{"link":"\#(youtube)"}"#)
            #expect(video.json["link"] as? String == youtube, "kept as posted")
            #expect(try await team.editor.post("/api/v1/streams", #"{"link":"https://m.youtube.com/live/abcDEF12345"}"#).status == .conflict)
            // A new link replaces both forms; the CSV export and the wall feed show it as posted.
            let moved = try await team.editor.patch("/api/v1/streams/\(id)", #"{"link":"https://m.twitch.tv/Night_Desk_2"}"#)
            #expect(moved.json["link"] as? String == "https://m.twitch.tv/Night_Desk_2")
            let csv = try await team.viewer.get("/api/v1/streams.csv")
            #expect(csv.text.contains("https://m.twitch.tv/Night_Desk_2") && csv.text.contains(youtube))
            let wall = try await team.viewer.get("/api/v1/streams?format=streamwall")
            #expect(wall.array.compactMap { $0["link"] as? String }.sorted() == ["https://m.twitch.tv/Night_Desk_2", youtube].sorted())
            // Rows from before the migration (no posted form) show and find their canonical link.
            _ = try await app.database.sql.raw("UPDATE streams SET posted_link = NULL, version = version + 1 WHERE id = \(bind: id)").run()
            app.registry.service.changed()
            let old = try await team.viewer.get("/api/v1/streams?link=https://www.twitch.tv/night_desk_2")
            #expect((old.json["streams"] as? [[String: Any]])?.first?["link"] as? String == "https://twitch.tv/night_desk_2")
        }
    }

    @Test func wallFormatIsABareArrayWithTheTokenInTheURL() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            _ = try await createStream(team.editor, #"{"link":"https://www.tiktok.com/@someone/live","source":"someone","status":"live","orientation":"vertical","city":"Reno","state":"NV"}"#)
            let archived = try await createStream(team.editor, #"{"link":"https://twitch.tv/old"}"#)
            _ = try await team.editor.post("/api/v1/streams/\(archived["id"] as? Int ?? 0)/archive")
            let token = try #require(team.viewer.token)
            let wall = try await APIClient(client).get("/api/v1/streams?format=streamwall&token=\(token)")
            #expect(wall.status == .ok)
            let entries = wall.array
            #expect(entries.count == 1)
            #expect(entries.first?["status"] as? String == "Live")
            #expect(entries.first?["orientation"] as? String == "V")
            #expect(entries.first?["link"] as? String == "https://www.tiktok.com/@someone/live", "the wall feed shows the link as posted")
            #expect(entries.first?["addedDate"] is String)
            #expect(entries.first?["label"] as? String == "someone")
            let bad = try await APIClient(client).get("/api/v1/streams?format=streamwall&token=nope")
            #expect(bad.status == .unauthorized)
        }
    }

    @Test func rolesDecideWhoMayWrite() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            #expect(try await team.anonymous.get("/api/v1/streams").status == .unauthorized)
            let viewerWrite = try await team.viewer.post("/api/v1/streams", #"{"link":"https://twitch.tv/x"}"#)
            #expect(viewerWrite.status == .forbidden)
            #expect(viewerWrite.errorCode == "forbidden")
            #expect(try await team.viewer.get("/api/v1/streams").status == .ok)
            #expect(try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/x"}"#).status == .created)
        }
    }
}

@Suite struct StreamLinkTests {
    @Test(arguments: [
        ("https://www.twitch.tv/SomeOne/", "https://twitch.tv/someone", Platform.twitch),
        ("twitch.tv/someone?utm_medium=social", "https://twitch.tv/someone", .twitch),
        ("<https://youtu.be/AbC123?si=xyz>", "https://youtu.be/AbC123", .youtube),
        ("https://m.youtube.com/watch?v=AbC123&feature=share&t=30", "https://youtube.com/watch?v=AbC123&t=30", .youtube),
        ("HTTP://Example.COM:80/Live/index.m3u8#x", "http://example.com/Live/index.m3u8", .hls),
        ("https://example.org/page?s=1&utm_source=a", "https://example.org/page?s=1", .other),
        ("https://x.com/i/broadcasts/1ABC", "https://x.com/i/broadcasts/1ABC", .x),
        ("https://www.facebook.com/watch/live/?v=123", "https://facebook.com/watch/live?v=123", .facebook),
        ("kick.com/Streamer", "https://kick.com/streamer", .kick),
        ("https://www.instagram.com/someone/live/", "https://instagram.com/someone/live", .instagram),
        ("https://rumble.com/v4abc-live.html", "https://rumble.com/v4abc-live.html", .rumble),
    ])
    func normalises(raw: String, expected: String, platform: Platform) throws {
        let link = try StreamLink(raw)
        #expect(link.url == expected)
        #expect(link.platform == platform)
    }

    @Test(arguments: ["javascript:alert(1)", "ftp://example.com/x", "file:///etc/passwd", "data:text/html,hi", "", "   ", "http://", "https://exa mple.com", "notalink"])
    func refuses(raw: String) {
        #expect(throws: StreamLink.Invalid.self) { try StreamLink(raw) }
    }

    @Test func timestampsRoundTrip() throws {
        #expect(Timestamp.iso8601(0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601(1_795_000_000.25) == "2026-11-18T11:06:40.250Z")
        #expect(Timestamp.parse("2026-11-18T11:06:40.250Z") == 1_795_000_000.25)
        #expect(Timestamp.parse("2026-11-18T13:06:40+02:00") == 1_795_000_000)
        #expect(Timestamp.parse("2026-11-18") == 1_794_960_000)
        #expect(Timestamp.parse("1795000000") == 1_795_000_000)
        #expect(Timestamp.parse("yesterday") == nil)
        #expect(Timestamp.parse("2026-13-01T00:00:00Z") == nil)
    }
}
