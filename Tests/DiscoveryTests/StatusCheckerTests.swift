import Foundation
import HLS
import HTTPTypes
import HubCore
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import Recorder
import Registry
import StatusChecker
import StreamHub
import Synchronization
import Testing

/// A scriptable HTTP origin: each path answers what the test set (status, body, delay), and counts requests.
final class Origin: Sendable {
    struct Answer: Sendable {
        var status: HTTPResponse.Status = .ok
        var body: String = ""
        var delay: Duration = .zero
        var location: String? = nil
    }

    let answers = Mutex<[String: Answer]>([:])
    let hits = Mutex<[String: Int]>([:])

    func set(_ path: String, _ answer: Answer) { answers.withLock { $0[path] = answer } }
    func count(_ path: String) -> Int { hits.withLock { $0[path] ?? 0 } }

    static func mediaPlaylist(sequence: Int, segments: Int = 3, ended: Bool = false) -> String {
        var text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:\(sequence)\n"
        for index in sequence..<(sequence + segments) { text += "#EXTINF:2.0,\nsegment\(index).ts\n" }
        return text + (ended ? "#EXT-X-ENDLIST\n" : "")
    }

    func run<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let router = Router()
        router.get("**") { request, _ -> Response in
            let path = request.uri.path
            self.hits.withLock { $0[path, default: 0] += 1 }
            let answer = self.answers.withLock { $0[path] } ?? Answer(status: .notFound, body: "no such thing")
            if answer.delay > .zero { try await Task.sleep(for: answer.delay) }
            var headers: HTTPFields = [.contentType: "application/vnd.apple.mpegurl"]
            if let location = answer.location { headers[.location] = location }
            return Response(status: answer.status, headers: headers, body: .init(byteBuffer: .init(string: answer.body)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in try await body(client.port!) }
    }
}

@Suite struct StatusCheckerTests {
    static func configure(timeout: Int = 2, allowPrivate: Bool = true) -> @Sendable (inout HubConfiguration) -> Void {
        { configuration in
            configuration.allowPrivateSources = allowPrivate
            configuration.status.timeout = Double(timeout)
            configuration.status.hostRate = 1000
            configuration.status.ytDLPPath = "/nonexistent/yt-dlp"
        }
    }

    static func create(_ editor: APIClient, _ link: String) async throws -> Int {
        let response = try await editor.post("/api/v1/streams", JSONText.object([("link", .string(link))]))
        guard let id = response.json["id"] as? Int else { throw TestFailure("create \(link): \(response.status) \(response.text)") }
        return id
    }

    @Test(arguments: TestDatabases.available)
    func playlistsDecideLiveAndOfflineOnTheSchedule(backend: TestDatabases.Backend) async throws {
        let origin = Origin()
        let clock = ManualWallClock(Date())
        try await origin.run { port in
            try await withTestApplication(backend: backend, clock: clock, configure: Self.configure()) { app, client in
                let team = try await Team.make(app, client)
                let base = "http://127.0.0.1:\(port)"
                origin.set("/live.m3u8", .init(body: Origin.mediaPlaylist(sequence: 10)))
                origin.set("/ended.m3u8", .init(body: Origin.mediaPlaylist(sequence: 10, ended: true)))
                origin.set("/master.m3u8", .init(body: "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nvariant/low.m3u8\n"))
                origin.set("/variant/low.m3u8", .init(body: Origin.mediaPlaylist(sequence: 1)))
                origin.set("/page.html", .init(body: "<html>hello</html>"))
                origin.set("/slow.m3u8", .init(body: Origin.mediaPlaylist(sequence: 1), delay: .seconds(5)))
                origin.set("/garbage.m3u8", .init(body: "<html>not a playlist</html>"))
                let live = try await Self.create(team.editor, base + "/live.m3u8")
                let ended = try await Self.create(team.editor, base + "/ended.m3u8")
                let gone = try await Self.create(team.editor, base + "/gone.m3u8")
                let master = try await Self.create(team.editor, base + "/master.m3u8")
                let page = try await Self.create(team.editor, base + "/page.html")
                let slow = try await Self.create(team.editor, base + "/slow.m3u8")
                let garbage = try await Self.create(team.editor, base + "/garbage.m3u8")

                let scheduler = app.status.scheduler
                #expect(try await scheduler.runDue() == 0, "new streams are due a few seconds after they are enrolled")
                clock.advance(by: 10)
                #expect(try await scheduler.runDue() == 7)
                func status(_ id: Int) async throws -> String? { try await team.viewer.get("/api/v1/streams/\(id)").json["status"] as? String }
                #expect(try await status(live) == "live")
                #expect(try await status(ended) == "offline")
                #expect(try await status(gone) == "offline")
                #expect(try await status(master) == "live")
                #expect(origin.count("/variant/low.m3u8") == 1)
                #expect(try await status(page) == "unknown")
                #expect(try await status(slow) == "unknown")
                #expect(try await status(garbage) == "unknown")
                let liveStream = try await team.viewer.get("/api/v1/streams/\(live)")
                #expect(liveStream.json["last_live_at"] as? String != nil)
                #expect(liveStream.json["last_checked_at"] as? String != nil)

                // Nothing is due again until its interval has passed (live: 300 s, others 900 s, ±10 %).
                clock.advance(by: 200)
                #expect(try await scheduler.runDue() == 0)
                // A playlist that moves stays live.
                origin.set("/live.m3u8", .init(body: Origin.mediaPlaylist(sequence: 11)))
                clock.advance(by: 140)
                let recheck = try await scheduler.runDue()
                #expect(recheck == 2, "the two live streams; the others are due at 900 s ± 10 %")
                #expect(try await status(live) == "live")
                // Then it stops moving: unchanged for longer than three target durations (at least 30 s), it is offline.
                clock.advance(by: 340)
                _ = try await scheduler.runDue()
                #expect(try await status(live) == "offline")
                let history = try await team.viewer.get("/api/v1/streams/\(live)/checks")
                let checks = try #require(history.json["checks"] as? [[String: Any]])
                #expect(checks.count >= 3)
                #expect(checks.first?["status"] as? String == "offline")
                #expect((checks.first?["reason"] as? String)?.contains("not changed") == true)
                #expect(checks.last?["method"] as? String == "hls")

                // Failing checks back off: twice the wait per failure.
                let failures = try await app.database.sql.raw("SELECT failures FROM stream_check_state WHERE stream_id = \(bind: slow)").first()?
                    .decode(column: "failures", as: Int.self)
                #expect(failures == 1)
            }
        }
    }

    @Test func checkNowRecordsHistoryAndPublishesStatusChanges() async throws {
        let origin = Origin()
        try await origin.run { port in
            try await withTestApplication(configure: Self.configure()) { app, client in
                let team = try await Team.make(app, client)
                origin.set("/cam.m3u8", .init(body: Origin.mediaPlaylist(sequence: 5)))
                let id = try await Self.create(team.editor, "http://127.0.0.1:\(port)/cam.m3u8")
                let cable = WebSocketProbe(port: client.port!, path: "/api/v1/cable?token=\(team.viewer.token!)")
                defer { Task { await cable.close() } }
                #expect(try await cable.nextJSON()["event"] as? String == "welcome")

                let first = try await team.editor.post("/api/v1/streams/\(id)/check")
                #expect(first.status == .ok, "\(first.text)")
                #expect(first.json["status"] as? String == "live")
                #expect(first.json["previous"] as? String == "unknown")
                #expect(first.json["method"] as? String == "hls")
                var statusEvent: [String: Any] = [:]
                while statusEvent.isEmpty {
                    let frame = try await cable.nextJSON()
                    if frame["event"] as? String == "stream_status" { statusEvent = frame }
                }
                #expect(statusEvent["status"] as? String == "live")
                #expect((statusEvent["stream"] as? [String: Any])?["id"] as? Int == id)

                let etag = try await team.viewer.get("/api/v1/streams/\(id)").headers[.eTag]
                origin.set("/cam.m3u8", .init(body: Origin.mediaPlaylist(sequence: 6)))
                let second = try await team.editor.post("/api/v1/streams/\(id)/check")
                #expect(second.json["status"] as? String == "live")
                let after = try await team.viewer.get("/api/v1/streams/\(id)")
                #expect(after.headers[.eTag] == etag, "an unchanged status does not change the version")
                #expect(after.json["last_checked_at"] as? String == second.json["checked_at"] as? String)

                origin.set("/cam.m3u8", .init(status: .notFound))
                let third = try await team.editor.post("/api/v1/streams/\(id)/check")
                #expect(third.json["status"] as? String == "offline")
                #expect((third.json["reason"] as? String)?.contains("404") == true)
                let audit = try await team.admin.get("/api/v1/audit?entity=stream&entity_id=\(id)")
                let actions = (audit.json["entries"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
                #expect(actions.filter { $0 == "status_check" }.count == 2, "\(actions)")

                let history = try await team.viewer.get("/api/v1/streams/\(id)/checks?per_page=2")
                #expect((history.json["checks"] as? [Any])?.count == 2)
                #expect((history.json["meta"] as? [String: Any])?["total_count"] as? Int == 3)
                #expect(try await team.viewer.post("/api/v1/streams/\(id)/check").status == .forbidden)
                #expect(try await team.anonymous.get("/api/v1/streams/\(id)/checks").status == .unauthorized)
                #expect(try await team.editor.post("/api/v1/streams/999999/check").status == .notFound)
                #expect(try await team.viewer.get("/api/v1/streams/999999/checks").status == .notFound)
                #expect(try await team.viewer.get("/api/v1/streams/\(id)/checks?per_page=100000").status == .unprocessableContent)
            }
        }
    }

    @Test func theSSRFGuardStopsChecksOfPrivateAddresses() async throws {
        let origin = Origin()
        try await origin.run { port in
            try await withTestApplication(configure: Self.configure(allowPrivate: false)) { app, client in
                let team = try await Team.make(app, client)
                origin.set("/cam.m3u8", .init(body: Origin.mediaPlaylist(sequence: 5)))
                origin.set("/redirect.m3u8", .init(status: .found, body: ""))
                for link in ["http://127.0.0.1:\(port)/cam.m3u8", "http://0x7f.1:\(port)/cam.m3u8", "http://[::1]:\(port)/cam.m3u8",
                             "http://169.254.169.254/latest/meta-data.m3u8", "http://localhost:\(port)/cam.m3u8", "http://10.0.0.1/x.m3u8"] {
                    let id = try await Self.create(team.editor, link)
                    let result = try await team.editor.post("/api/v1/streams/\(id)/check")
                    #expect(result.json["status"] as? String == "unknown", "\(link)")
                    #expect((result.json["reason"] as? String)?.contains("SSRF") == true, "\(link): \(result.text)")
                }
                #expect(origin.count("/cam.m3u8") == 0, "no request reached the private origin")
                // Platform pages go to yt-dlp, whose URL is checked first too.
                let page = try await Self.create(team.editor, "https://twitch.tv/someone_live")
                let checked = try await team.editor.post("/api/v1/streams/\(page)/check")
                #expect(checked.json["method"] as? String == "yt-dlp")
                #expect(checked.json["status"] as? String == "unknown")
            }
        }
    }

    @Test func everyRedirectHopPassesTheGuard() async throws {
        let origin = Origin()
        try await origin.run { port in
            let client = GuardedFetcher.makeClient()
            let guarded = GuardedFetcher(client: client, guardrail: SourceURLGuard(allowPrivate: true))
            origin.set("/hop", .init(status: .found, location: "/hop2"))
            origin.set("/hop2", .init(status: .found, location: "http://169.254.169.254/latest/meta-data/"))
            origin.set("/loop", .init(status: .found, location: "/loop"))
            do {
                _ = try await guarded.get("http://127.0.0.1:\(port)/hop", limit: 1024, deadline: .now + .seconds(2))
                Issue.record("the metadata address was fetched")
            } catch {
                #expect("\(error)".contains("SSRF"), "\(error)")
            }
            #expect(origin.count("/hop2") == 1, "the first redirect was followed")
            do {
                // A generous deadline: six hops on a machine busy with the other tests must not time out first.
                _ = try await guarded.get("http://127.0.0.1:\(port)/loop", limit: 1024, deadline: .now + .seconds(20))
                Issue.record("a redirect loop was followed for ever")
            } catch {
                #expect(error as? GuardedFetcher.Failure == .tooManyRedirects)
            }
            origin.set("/big", .init(body: String(repeating: "x", count: 4096)))
            do {
                _ = try await guarded.get("http://127.0.0.1:\(port)/big", limit: 1024, deadline: .now + .seconds(2))
                Issue.record("an oversized answer was read")
            } catch {
                #expect(error as? GuardedFetcher.Failure == .tooLarge(1024))
            }
            try await client.shutdown()
        }
    }

    @Test func autoArchiveFollowsTheFlag() async throws {
        let clock = ManualWallClock(Date())
        try await withTestApplication(clock: clock, configure: Self.configure()) { app, client in
            let team = try await Team.make(app, client)
            let offline = try await Self.create(team.editor, "https://twitch.tv/gone_quiet")
            let pinned = try await Self.create(team.editor, "https://twitch.tv/pinned_quiet")
            let live = try await Self.create(team.editor, "https://twitch.tv/still_live")
            _ = try await team.editor.patch("/api/v1/streams/\(offline)", #"{"status":"offline"}"#)
            _ = try await team.editor.patch("/api/v1/streams/\(pinned)", #"{"status":"offline","is_pinned":true}"#)
            _ = try await team.editor.patch("/api/v1/streams/\(live)", #"{"status":"live"}"#)
            clock.advance(by: 2 * 86_400)
            #expect(try await app.status.scheduler.autoArchive() == 0, "the flag is off")
            #expect(try await team.admin.put("/api/v1/feature_flags/auto_archive", #"{"enabled":true}"#).status == .ok)
            #expect(try await app.status.scheduler.autoArchive() == 1)
            #expect(try await team.viewer.get("/api/v1/streams/\(offline)").json["is_archived"] as? Bool == true)
            #expect(try await team.viewer.get("/api/v1/streams/\(pinned)").json["is_archived"] as? Bool == false)
            #expect(try await team.viewer.get("/api/v1/streams/\(live)").json["is_archived"] as? Bool == false)
        }
    }
}
