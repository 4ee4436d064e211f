import Foundation
import HubCore
import HubStore
import Logging
import NIOCore
import SQLKit

/// The post-processor: a window of a recording remuxed (never re-encoded) by ffmpeg into one MP4 or TS file,
/// with progress published as `recording_export` events. Files live under the recording's `exports/`.
struct Exporter: Sendable {
    enum State: String, Sendable { case queued, running, done, failed }

    struct Job: Sendable {
        var id: String
        var recordingID: String
        var startsAt: Double
        var duration: Double
        var format: String
        var state: State
        var progress: Double
        var error: String?
        var fileName: String?
        var size: Int?
        var createdAt: Double
        var finishedAt: Double?

        init(row: any SQLRow) throws {
            id = try row.decode(column: "id", as: String.self)
            recordingID = try row.decode(column: "recording_id", as: String.self)
            startsAt = try row.decode(column: "starts_at", as: Double.self)
            duration = try row.decode(column: "duration", as: Double.self)
            format = try row.decode(column: "format", as: String.self)
            state = State(rawValue: try row.decode(column: "state", as: String.self)) ?? .failed
            progress = try row.decode(column: "progress", as: Double.self)
            error = try row.decode(column: "error", as: String?.self)
            fileName = try row.decode(column: "file_name", as: String?.self)
            size = try row.decode(column: "size", as: Int?.self)
            createdAt = try row.decode(column: "created_at", as: Double.self)
            finishedAt = try row.decode(column: "finished_at", as: Double?.self)
        }

        init(id: String, recordingID: String, startsAt: Double, duration: Double, format: String, now: Double) {
            self.id = id
            self.recordingID = recordingID
            self.startsAt = startsAt
            self.duration = duration
            self.format = format
            self.state = .queued
            self.progress = 0
            self.createdAt = now
        }

        var json: String {
            JSONText.object([
                ("id", .string(id)), ("recording_id", .string(recordingID)), ("start", .string(Timestamp.iso8601(startsAt))),
                ("duration", .double(duration)), ("format", .string(format)), ("state", .string(state.rawValue)),
                ("progress", .double((progress * 1000).rounded() / 1000)), ("error", error.map(JSONText.Value.string) ?? .null),
                ("size", size.map(JSONText.Value.int) ?? .null), ("created_at", .string(Timestamp.iso8601(createdAt))),
                ("finished_at", finishedAt.map { .string(Timestamp.iso8601($0)) } ?? .null),
                ("file", .string("/api/v1/recordings/\(recordingID)/exports/\(id)/file")),
            ])
        }
    }

    struct Body: Decodable {
        var start: Double
        var duration: Double
        var format: String

        enum CodingKeys: String, CodingKey { case start, duration, format }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let seconds = try? container.decode(Double.self, forKey: .start) {
                start = seconds
            } else {
                let text = try container.decode(String.self, forKey: .start)
                guard let seconds = Timestamp.parse(text) ?? PlaylistWindows.parseTimestamp(text) else {
                    throw DecodingError.dataCorruptedError(forKey: .start, in: container,
                                                           debugDescription: "expected Unix seconds, ISO 8601, or YYYYMMDDHHMMSS (UTC)")
                }
                start = seconds
            }
            duration = try container.decode(Double.self, forKey: .duration)
            format = try container.decodeIfPresent(String.self, forKey: .format)?.lowercased() ?? "mp4"
        }
    }

    let database: HubDatabase
    let store: SegmentStore
    let index: SegmentIndex
    let bus: EventBus
    let ffmpegPath: String
    let slots: AsyncSemaphore
    let logger: Logger

    static let columns = "id, recording_id, starts_at, duration, format, state, progress, error, file_name, size, created_at, finished_at"

    func create(recording: String, body: Body, by actor: String) async throws -> Job {
        guard body.start.isFinite, body.start > 0 else { throw HubError.validation("start must be a moment after 1970") }
        guard body.duration.isFinite, body.duration > 0, body.duration <= 6 * 3600 else {
            throw HubError.validation("duration must be from 1 second to 6 hours (21600 seconds)")
        }
        guard body.format == "mp4" || body.format == "ts" else { throw HubError.validation("format must be mp4 or ts") }
        let segments = try await index.window(recording, from: body.start, to: body.start + body.duration)
        guard !segments.isEmpty else { throw HubError.validation("nothing is recorded in that window") }
        let job = Job(id: RecordingID.make(), recordingID: recording, startsAt: body.start, duration: body.duration, format: body.format,
                      now: Timestamp.now())
        try await database.sql.raw("""
            INSERT INTO recording_exports (id, recording_id, starts_at, duration, format, state, progress, created_by, created_at)
            VALUES (\(bind: job.id), \(bind: recording), \(bind: job.startsAt), \(bind: job.duration), \(bind: job.format), 'queued', 0,
            \(bind: actor), \(bind: job.createdAt))
            """).run()
        publish(job)
        Task { await run(job, segments: segments) }
        return job
    }

    func list(recording: String) async throws -> [Job] {
        try await database.reader.raw("""
            SELECT \(unsafeRaw: Self.columns) FROM recording_exports WHERE recording_id = \(bind: recording) ORDER BY created_at DESC LIMIT 100
            """).all().map(Job.init)
    }

    func job(recording: String, export: String) async throws -> Job {
        guard let row = try await database.reader.raw("""
            SELECT \(unsafeRaw: Self.columns) FROM recording_exports WHERE recording_id = \(bind: recording) AND id = \(bind: export)
            """).first() else { throw HubError.notFound("no export \(export) of recording \(recording)") }
        return try Job(row: row)
    }

    func path(_ job: Job) -> String? {
        job.fileName.map { store.directory(job.recordingID) + "/exports/" + $0 }
    }

    func publish(_ job: Job) {
        bus.publish(type: RecorderModule.exportEvent, payload: ByteBuffer(string: "{\"export\":" + job.json + "}"), visibility: .recording(job.recordingID))
    }

    func save(_ job: Job) async {
        try? await database.sql.raw("""
            UPDATE recording_exports SET state = \(bind: job.state.rawValue), progress = \(bind: job.progress), error = \(bind: job.error),
            file_name = \(bind: job.fileName), size = \(bind: job.size), finished_at = \(bind: job.finishedAt) WHERE id = \(bind: job.id)
            """).run()
    }

    /// Runs ffmpeg's concat demuxer over the window's files with `-c copy`, reading progress from `-progress`.
    func run(_ queued: Job, segments: [RecordedSegment]) async {
        var job = queued
        await slots.wait()
        defer { slots.signal() }
        let directory = store.directory(job.recordingID)
        let exports = directory + "/exports"
        let name = job.id + "." + job.format
        let list = exports + "/" + job.id + ".txt", progressFile = exports + "/" + job.id + ".progress", output = exports + "/" + name + ".part"
        defer { unlink(list); unlink(progressFile) }
        do {
            try FileManager.default.createDirectory(atPath: exports, withIntermediateDirectories: true)
            // fMP4 fragments are joined behind their init section; TS segments are concatenated as they are.
            var lines = ["ffconcat version 1.0"]
            for segment in segments {
                if let map = segment.map, segment.sequence == segments.first?.sequence || segment.discontinuity {
                    lines.append("file '\(directory)/\(map)'")
                }
                lines.append("file '\(directory)/\(segment.fileName)'")
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        } catch {
            job.state = .failed
            job.error = "could not prepare the export: \(error)"
            job.finishedAt = Timestamp.now()
            await save(job)
            publish(job)
            return
        }
        job.state = .running
        await save(job)
        publish(job)
        let total = segments.reduce(0) { $0 + $1.duration }
        var arguments = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0", "-i", list, "-map", "0",
                         "-c", "copy", "-progress", progressFile]
        arguments += job.format == "mp4" ? ["-movflags", "+faststart", "-f", "mp4", output] : ["-f", "mpegts", output]
        let running = job
        let watcher = Task {
            var lastPublished = 0.0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                guard let text = try? String(contentsOfFile: progressFile, encoding: .utf8),
                      let line = text.split(separator: "\n").last(where: { $0.hasPrefix("out_time_us=") }),
                      let micros = Double(line.dropFirst("out_time_us=".count)), total > 0 else { continue }
                let progress = min(0.99, micros / 1e6 / total)
                if progress - lastPublished >= 0.05 {
                    lastPublished = progress
                    var update = running
                    update.progress = progress
                    await save(update)
                    publish(update)
                }
            }
        }
        let result = try? await ChildProcess.run(ffmpegPath, arguments, timeout: .seconds(max(60, total)))
        watcher.cancel()
        // A progress update still in flight must land before the final state, never after it.
        await watcher.value
        if let result, result.status == 0, rename(output, exports + "/" + name) == 0 {
            job.state = .done
            job.progress = 1
            job.fileName = name
            job.size = SegmentStore.size(exports + "/" + name)
        } else {
            unlink(output)
            job.state = .failed
            let why = result.map { String(decoding: $0.stderr, as: UTF8.self).split(whereSeparator: \.isNewline).last.map(String.init) ?? "exit status \($0.status)" }
            job.error = "ffmpeg: " + (why ?? "could not run \(ffmpegPath)")
        }
        job.finishedAt = Timestamp.now()
        await save(job)
        publish(job)
        logger.info("export finished", metadata: ["recording_id": "\(job.recordingID)", "export_id": "\(job.id)", "state": "\(job.state.rawValue)"])
    }
}
