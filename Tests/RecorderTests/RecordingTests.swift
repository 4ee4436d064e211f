import Crypto
import Foundation
import HLS
import HTTPTypes
import HubCore
import HubTestSupport
import Hummingbird
import HummingbirdTesting
@testable import Recorder
import StreamHub
import Synchronization
import Testing

/// A scripted HLS origin: `/s/live.m3u8` answers whatever playlist the test set; `/s/segN.ts` answers a
/// small body naming N. Requests are counted per path.
final class ScriptedOrigin: Sendable {
    let playlist = Mutex<(status: HTTPResponse.Status, body: String)>((.notFound, ""))
    let hits = Mutex<[String: Int]>([:])
    /// Other paths with fixed answers (a master playlist, a finished VOD playlist).
    let fixed = Mutex<[String: String]>([:])

    func set(_ body: String, status: HTTPResponse.Status = .ok) { playlist.withLock { $0 = (status, body) } }

    static func segmentBody(_ n: Int) -> String { "SEG\(n)-" + String(repeating: "x", count: 400) }

    /// A live media playlist of 1-second segments `first..<first+count`.
    static func media(first: Int, count: Int, ended: Bool = false) -> String {
        var text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:\(first)\n"
        for n in first..<(first + count) { text += "#EXTINF:1.0,\nseg\(n).ts\n" }
        return text + (ended ? "#EXT-X-ENDLIST\n" : "")
    }

    func run<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let router = Router()
        router.get("**") { request, _ -> Response in
            let path = request.uri.path
            self.hits.withLock { $0[path, default: 0] += 1 }
            if path == "/s/live.m3u8" {
                let (status, text) = self.playlist.withLock { $0 }
                return Response(status: status, headers: [.contentType: "application/vnd.apple.mpegurl"], body: .init(byteBuffer: .init(string: text)))
            }
            if let text = self.fixed.withLock({ $0[path] }) {
                return Response(status: .ok, headers: [.contentType: "application/vnd.apple.mpegurl"], body: .init(byteBuffer: .init(string: text)))
            }
            if path.hasPrefix("/s/seg"), path.hasSuffix(".ts"), let n = Int(path.dropFirst(6).dropLast(3)) {
                return Response(status: .ok, headers: [.contentType: "video/mp2t"], body: .init(byteBuffer: .init(string: Self.segmentBody(n))))
            }
            return Response(status: .notFound)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in try await body(client.port!) }
    }
}

@Suite struct RecordingTests {
    static func configure(_ configuration: inout HubConfiguration) {
        configuration.recorder.previewInterval = 0
        configuration.recorder.ffprobePath = "/nonexistent/ffprobe"
    }

    @Test(arguments: TestDatabases.available)
    func recordsGapsAndRestartsServesWindowsAndKeepsRetentionSafe(backend: TestDatabases.Backend) async throws {
        let origin = ScriptedOrigin()
        try await origin.run { port in
            try await withTestApplication(backend: backend, configure: Self.configure) { app, client in
                let team = try await Team.make(app, client)
                let state = WebSocketProbe(port: client.port!, path: "/api/stream/ws?target=state&token=\(team.viewer.token!)")
                defer { Task { await state.close() } }
                let welcome = try await state.nextJSON()
                #expect(welcome["type"] as? String == "welcome" && welcome["timestamp"] as? Int != nil)

                origin.set(ScriptedOrigin.media(first: 0, count: 4))
                let created = try await team.editor.post("/api/v1/recordings", JSONText.object([
                    ("url", .string("http://127.0.0.1:\(port)/s/live.m3u8")), ("retention", .int(60)), ("variant", .string("best")),
                ]))
                #expect(created.status == .created, "\(created.text)")
                let id = try #require(created.json["id"] as? String)
                @Sendable func recording() async throws -> [String: any Sendable] { try await team.viewer.get("/api/v1/recordings/\(id)").json }
                @Sendable func count(_ key: String) async throws -> Int { try await recording()[key] as? Int ?? -1 }

                try await eventually("the first 4 segments", within: 15) { try await count("segments") == 4 }
                #expect(try await recording()["state"] as? String == "recording")
                // The state channel reports it, in the seed's shape plus the recording.
                var sawLive = false
                while !sawLive {
                    let update = try await state.nextJSON()
                    guard update["type"] as? String == "stateUpdate", let payload = update["payload"] as? [String: Any],
                          let stream = payload["stream"] as? [String: Any], (payload["recording"] as? [String: Any])?["id"] as? String == id else { continue }
                    #expect(stream["isPaused"] as? Bool == false && stream["droppedFrames"] as? Int == 0 && stream["startTime"] as? Int != nil)
                    sawLive = stream["isLive"] as? Bool == true
                }

                // The window moves on: only the new segments are fetched.
                origin.set(ScriptedOrigin.media(first: 2, count: 6))
                try await eventually("segments 4 to 7", within: 15) { try await count("segments") == 8 }
                #expect(origin.hits.withLock { $0["/s/seg2.ts"] } == 1, "a segment is downloaded once")
                #expect(try await count("missed_segments") == 0)

                // A gap: 8 and 9 never appear.
                origin.set(ScriptedOrigin.media(first: 10, count: 3))
                try await eventually("segments after the gap", within: 15) { try await count("segments") == 11 }
                #expect(try await count("missed_segments") == 2)

                // The source restarts from 0.
                origin.set(ScriptedOrigin.media(first: 0, count: 3))
                try await eventually("segments after the restart", within: 15) { try await count("segments") == 14 }
                #expect(try await count("missed_segments") == 2)

                @Sendable func indexed() async throws -> Int {
                    try await app.database.sql.raw("SELECT COUNT(*) AS n FROM recording_segments WHERE recording_id = \(bind: id)").first()?
                        .decode(column: "n", as: Int.self) ?? 0
                }
                try await eventually("the index to hold all 14", within: 5) { try await indexed() == 14 }

                // live.m3u8: our sequences 9...13, one discontinuity slid out (at 8), the restart (at 11) inside.
                let live = try await team.anonymous.get("/recordings/\(id)/live.m3u8")
                #expect(live.status == .ok && live.headers[.contentType] == "application/vnd.apple.mpegurl" && live.headers[.cacheControl] == "no-cache")
                #expect(live.text.contains("#EXT-X-MEDIA-SEQUENCE:9\n") && live.text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "\(live.text)")
                #expect(live.text.components(separatedBy: "#EXTINF").count - 1 == 5)
                #expect(live.text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:") && live.text.contains("segments/0000000011.ts"))
                let parsed = try Playlist.parse(live.text)
                guard case .media(let media) = parsed else { throw TestFailure("live.m3u8 is not a media playlist") }
                #expect(media.segments.map(\.sequence) == Array(9...13) && media.segments.filter(\.discontinuity).map(\.sequence) == [11])

                // Segment bytes are the source's, indexed with their checksum.
                let first = try await team.anonymous.get("/recordings/\(id)/segments/0000000000.ts")
                #expect(first.status == .ok && first.text == ScriptedOrigin.segmentBody(0) && first.headers[.contentType] == "video/mp2t")
                let checksum = try await app.database.sql.raw("SELECT checksum FROM recording_segments WHERE recording_id = \(bind: id) AND sequence = 0")
                    .first()?.decode(column: "checksum", as: String.self)
                #expect(checksum == SHA256.hash(data: Data(ScriptedOrigin.segmentBody(0).utf8)).map { String(format: "%02x", $0) }.joined())
                let sourceSequences = try await app.database.sql.raw("SELECT source_sequence FROM recording_segments WHERE recording_id = \(bind: id) ORDER BY sequence")
                    .all().map { try $0.decode(column: "source_sequence", as: Int.self) }
                #expect(sourceSequences == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 0, 1, 2])

                // The VOD window of everything, and ?utc=.
                let vod = try await team.anonymous.get("/recordings/\(id)/start/\(Int(Date().timeIntervalSince1970) - 600)/20/vod.m3u8")
                #expect(vod.status == .ok && vod.text.hasSuffix("#EXT-X-ENDLIST\n") && vod.text.contains("#EXT-X-PLAYLIST-TYPE:VOD"))
                #expect(vod.text.components(separatedBy: "#EXTINF").count - 1 == 14 && vod.text.contains("../../../segments/0000000000.ts"))

                // Metrics per recording, labelled by the metrics_ref the API names, never by the id (a capability).
                let metrics = try await team.anonymous.get("/metrics").text
                let ref = try #require(try await team.viewer.get("/api/v1/recordings/\(id)").json["metrics_ref"] as? String)
                #expect(ref.count == 12 && !metrics.contains(id))
                #expect(metrics.contains("streamhub_recorder_segments_total{recording=\"\(ref)\"} 14"))
                #expect(metrics.contains("streamhub_recorder_missed_segments_total{recording=\"\(ref)\"} 2"))

                // Stop: recorded segments stay.
                let stopped = try await team.editor.delete("/api/v1/recordings/\(id)")
                #expect(stopped.status == .ok && stopped.json["state"] as? String == "stopped")
                try await eventually("the fetch loop to stop", within: 10) { app.recorder.supervisor.runtime(id) == nil }
                let after = try await team.anonymous.get("/recordings/\(id)/live.m3u8")
                #expect(after.status == .ok && after.text.contains("#EXT-X-MEDIA-SEQUENCE:9\n"), "served from the index once stopped")

                // Retention, with 1 s kept: nothing goes while the VOD playlist above (0...13) was handed out in the last minute.
                try await app.database.sql.raw("UPDATE recordings SET retention = 1 WHERE id = \(bind: id)").run()
                #expect(try await app.recorder.retention.sweep() == 0)
                // 100 s later a player has just fetched live.m3u8 (9...13): everything older goes, files first, then rows.
                let later = Date().timeIntervalSince1970 + 100
                app.recorder.supervisor.handouts.note(id, lowest: 9, now: later)
                #expect(try await app.recorder.retention.sweep(now: later) == 9)
                let rows = try await app.database.sql.raw("SELECT file_name FROM recording_segments WHERE recording_id = \(bind: id) ORDER BY sequence")
                    .all().map { try $0.decode(column: "file_name", as: String.self) }
                let files = try FileManager.default.contentsOfDirectory(atPath: app.recorder.supervisor.store.directory(id)).filter { $0.hasSuffix(".ts") }
                #expect(rows == (9...13).map { SegmentStore.padded($0) + ".ts" } && Set(files) == Set(rows))
            }
        }
    }

    @Test func stallsOnErrorsAndRecoversWithoutLosingItsPlace() async throws {
        let origin = ScriptedOrigin()
        try await origin.run { port in
            try await withTestApplication(configure: Self.configure) { app, client in
                let team = try await Team.make(app, client)
                origin.set(ScriptedOrigin.media(first: 100, count: 3))
                let created = try await team.editor.post("/api/v1/recordings", JSONText.object([("url", .string("http://127.0.0.1:\(port)/s/live.m3u8"))]))
                let id = try #require(created.json["id"] as? String)
                @Sendable func recording() async throws -> [String: any Sendable] { try await team.viewer.get("/api/v1/recordings/\(id)").json }
                try await eventually("recording", within: 15) { try await recording()["segments"] as? Int == 3 }
                origin.set("gone", status: .notFound)
                try await eventually("stalled on 404", within: 15) { try await recording()["state"] as? String == "stalled" }
                #expect((try await recording()["error"] as? String)?.contains("404") == true)
                origin.set("<html>maintenance</html>")
                try await eventually("a garbage answer counted", within: 15) { (try await recording()["error"] as? String)?.contains("not an HLS playlist") == true }
                origin.set(ScriptedOrigin.media(first: 101, count: 4))
                try await eventually("back to recording", within: 20) { try await recording()["state"] as? String == "recording" }
                let now = try await recording()
                #expect(now["segments"] as? Int == 5 && now["missed_segments"] as? Int == 0 && (now["errors"] as? Int ?? 0) >= 2 && now["error"] is NSNull)
            }
        }
    }

    @Test func mastersResolveToTheChosenVariantAndFinishedPlaylistsAreRecordedWhole() async throws {
        let origin = ScriptedOrigin()
        origin.fixed.withLock { fixed in
            fixed["/s/master.m3u8"] = """
                #EXTM3U
                #EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720
                hd.m3u8
                #EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180
                live.m3u8
                #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360
                sd.m3u8

                """
            fixed["/s/vod.m3u8"] = ScriptedOrigin.media(first: 0, count: 12, ended: true)
        }
        origin.set(ScriptedOrigin.media(first: 0, count: 2))
        try await origin.run { port in
            try await withTestApplication(configure: Self.configure) { app, client in
                let team = try await Team.make(app, client)
                let master = try await team.editor.post("/api/v1/recordings", JSONText.object([
                    ("url", .string("http://127.0.0.1:\(port)/s/master.m3u8")), ("variant", .int(500_000)),
                ]))
                let masterID = try #require(master.json["id"] as? String, "\(master.text)")
                try await eventually("the 400 kb/s variant to be recorded", within: 15) {
                    try await team.viewer.get("/api/v1/recordings/\(masterID)").json["segments"] as? Int == 2
                }
                #expect(try await team.viewer.get("/api/v1/recordings/\(masterID)").json["media_url"] as? String == "http://127.0.0.1:\(port)/s/live.m3u8")
                #expect(origin.hits.withLock { $0["/s/hd.m3u8"] == nil && $0["/s/sd.m3u8"] == nil })

                let vod = try await team.editor.post("/api/v1/recordings", JSONText.object([("url", .string("http://127.0.0.1:\(port)/s/vod.m3u8"))]))
                let vodID = try #require(vod.json["id"] as? String)
                try await eventually("the whole VOD playlist, then stopped", within: 15) {
                    let recording = try await team.viewer.get("/api/v1/recordings/\(vodID)").json
                    return recording["state"] as? String == "stopped" && recording["segments"] as? Int == 12
                }
            }
        }
    }

    @Test func badPlaybackRequestsAreRefusedCleanly() async throws {
        try await withTestApplication(configure: Self.configure) { app, client in
            let anonymous = APIClient(client)
            let unknown = String(repeating: "a", count: 32)
            for path in ["/recordings/\(unknown)/live.m3u8", "/recordings/xyz/live.m3u8", "/recordings/\(unknown)/segments/..%2Fstreamhub.sqlite",
                         "/recordings/\(unknown)/segments/0000000001.ts", "/live/stream.m3u8", "/live/0000000001.ts"] {
                let response = try await anonymous.get(path)
                #expect(response.status == .notFound, "\(path): \(response.status)")
                #expect(response.errorCode != nil, "\(path) answers a JSON error")
            }
            #expect(try await anonymous.get("/recordings/\(unknown)/start/2026-01-01/5/vod.m3u8").status == .badRequest)
            #expect(try await anonymous.get("/recordings/\(unknown)/start/1700000000/-1/vod.m3u8").status == .badRequest)
            #expect(try await anonymous.get("/recordings/\(unknown)/live.m3u8?utc=x").status == .badRequest)
            #expect(try await anonymous.get("/api/v1/recordings").status == .unauthorized)
        }
    }

    @Test func segmentNamesCannotEscapeTheRecordingDirectory() {
        for good in ["0000000001.ts", "0000000001.m4s", "init-0000000001.mp4", "0123456789.aac"] { #expect(SegmentStore.isValidName(good), "\(good)") }
        for bad in ["../0000000001.ts", "0000000001.ts/..", "..", "/etc/passwd", "1.ts", "0000000001.sqlite", "init-0000000001.ts",
                    "00000000001.ts", "0000000001.ts.part", "preview.jpg", "", "0000000001.TS", "000000000a.ts"] {
            #expect(!SegmentStore.isValidName(bad), "\(bad)")
        }
        let store = SegmentStore(dataDirectory: "/data")
        #expect(store.path("../" + String(repeating: "a", count: 29), "0000000001.ts") == nil)
        #expect(store.path(String(repeating: "a", count: 32), "0000000001.ts") == "/data/recordings/" + String(repeating: "a", count: 32) + "/0000000001.ts")
    }

    @Test func rangeHeaders() {
        #expect(FileResponder.parseRange("bytes=0-99", size: 1000) == .range(0...99))
        #expect(FileResponder.parseRange("bytes=900-", size: 1000) == .range(900...999))
        #expect(FileResponder.parseRange("bytes=-100", size: 1000) == .range(900...999))
        #expect(FileResponder.parseRange("bytes=-5000", size: 1000) == .range(0...999))
        #expect(FileResponder.parseRange("bytes=990-5000", size: 1000) == .range(990...999))
        #expect(FileResponder.parseRange("bytes=1000-", size: 1000) == .unsatisfiable)
        #expect(FileResponder.parseRange("bytes=5-1", size: 1000) == .unsatisfiable)
        #expect(FileResponder.parseRange("bytes=x-y", size: 1000) == .unsatisfiable)
        #expect(FileResponder.parseRange("bytes=0-1,5-6", size: 1000) == .whole)
        #expect(FileResponder.parseRange("items=0-1", size: 1000) == .whole)
        #expect(FileResponder.parseRange("bytes=99999999999999999999-", size: 1000) == .unsatisfiable)
    }

    @Test func handoutLogProtectsWhatPlaylistsListedInTheLastMinute() {
        let log = HandoutLog()
        log.note("r", lowest: 40, now: 1000)
        log.note("r", lowest: 35, now: 1005)
        log.note("r", lowest: 50, now: 1030)
        #expect(log.lowest("r", now: 1031) == 35)
        #expect(log.lowest("r", now: 1090) == 50, "what was handed out more than 70 s ago no longer holds")
        #expect(log.lowest("r", now: 1200) == nil)
        #expect(log.lowest("other", now: 1000) == nil)
    }

    @Test func retentionDurations() {
        #expect(RecordingsController.CreateBody.duration("90m") == 5400)
        #expect(RecordingsController.CreateBody.duration("24h") == 86_400)
        #expect(RecordingsController.CreateBody.duration("7d") == 604_800)
        #expect(RecordingsController.CreateBody.duration("3600") == 3600)
        #expect(RecordingsController.CreateBody.duration("soon") == nil)
    }
}
