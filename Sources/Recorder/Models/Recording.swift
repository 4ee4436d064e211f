import Foundation
import HubCore
import Registry
import SQLKit

/// Where a recording is in its life.
public enum RecordingState: String, Sendable, CaseIterable {
    /// Resolving its input, or waiting for its first segment.
    case starting
    case recording
    /// The source stopped answering, answered errors, or stopped adding segments; the recorder keeps trying.
    case stalled
    /// Stopped by a user (or the source was a finished VOD, all of it recorded).
    case stopped
    /// Could not start or continue (the input cannot be resolved, the SSRF guard refused it, …).
    case failed

    var isActive: Bool { self == .starting || self == .recording || self == .stalled }
}

/// What a recording's input URL is, as the pre-processor sees it.
public enum InputKind: String, Sendable {
    case hls, twitch, youtube, other
}

/// Everything known about one recording: its row, kept current in memory while it runs.
public struct Recording: Sendable, Equatable {
    public var id: String
    public var sourceURL: String
    public var inputKind: InputKind
    public var mediaURL: String?
    public var streamID: Int64?
    public var variant: String
    public var retention: Double
    public var state: RecordingState
    public var desiredRunning: Bool
    public var error: String?
    public var segments: Int = 0
    public var bytes: Int = 0
    public var missed: Int = 0
    public var errors: Int = 0
    public var lastSegmentAt: Double?
    public var codec: String?
    public var width: Int?
    public var height: Int?
    public var fps: Double?
    public var bitrate: Int?
    public var createdBy: String?
    public var createdAt: Double
    public var startedAt: Double?
    public var stoppedAt: Double?
    public var updatedAt: Double
    public var owner: String?
    /// Mean segment fetch time in milliseconds (in memory; 0 until a segment is fetched).
    public var meanFetchMilliseconds: Double = 0

    static let columns = "id, source_url, input_kind, media_url, stream_id, variant, retention, state, desired, error, segments, bytes, missed, errors, "
        + "last_segment_at, codec, width, height, fps, bitrate, created_by, created_at, started_at, stopped_at, updated_at, owner"

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: String.self)
        sourceURL = try row.decode(column: "source_url", as: String.self)
        inputKind = InputKind(rawValue: try row.decode(column: "input_kind", as: String.self)) ?? .other
        mediaURL = try row.decode(column: "media_url", as: String?.self)
        streamID = try row.decode(column: "stream_id", as: Int64?.self)
        variant = try row.decode(column: "variant", as: String.self)
        retention = try row.decode(column: "retention", as: Double.self)
        state = RecordingState(rawValue: try row.decode(column: "state", as: String.self)) ?? .failed
        desiredRunning = try row.decode(column: "desired", as: String.self) == "running"
        error = try row.decode(column: "error", as: String?.self)
        segments = try row.decode(column: "segments", as: Int.self)
        bytes = try row.decode(column: "bytes", as: Int.self)
        missed = try row.decode(column: "missed", as: Int.self)
        errors = try row.decode(column: "errors", as: Int.self)
        lastSegmentAt = try row.decode(column: "last_segment_at", as: Double?.self)
        codec = try row.decode(column: "codec", as: String?.self)
        width = try row.decode(column: "width", as: Int?.self)
        height = try row.decode(column: "height", as: Int?.self)
        fps = try row.decode(column: "fps", as: Double?.self)
        bitrate = try row.decode(column: "bitrate", as: Int?.self)
        createdBy = try row.decode(column: "created_by", as: String?.self)
        createdAt = try row.decode(column: "created_at", as: Double.self)
        startedAt = try row.decode(column: "started_at", as: Double?.self)
        stoppedAt = try row.decode(column: "stopped_at", as: Double?.self)
        updatedAt = try row.decode(column: "updated_at", as: Double.self)
        owner = try row.decode(column: "owner", as: String?.self)
    }

    init(id: String, sourceURL: String, inputKind: InputKind, streamID: Int64?, variant: String, retention: Double, createdBy: String?, now: Double) {
        self.id = id
        self.sourceURL = sourceURL
        self.inputKind = inputKind
        self.streamID = streamID
        self.variant = variant
        self.retention = retention
        self.state = .starting
        self.desiredRunning = true
        self.createdBy = createdBy
        self.createdAt = now
        self.startedAt = now
        self.updatedAt = now
    }

    /// The recording as the REST API shows it.
    public var json: String {
        func optional(_ value: String?) -> JSONText.Value { value.map(JSONText.Value.string) ?? .null }
        func optional(_ value: Int?) -> JSONText.Value { value.map(JSONText.Value.int) ?? .null }
        func time(_ value: Double?) -> JSONText.Value { Timestamp.jsonValue(value) }
        let base = "/recordings/\(id)"
        return JSONText.object([
            ("id", .string(id)), ("source_url", .string(sourceURL)), ("input_kind", .string(inputKind.rawValue)), ("media_url", optional(mediaURL)),
            ("stream_id", streamID.map { .int(Int($0)) } ?? .null), ("variant", .string(variant)), ("retention", .int(Int(retention))),
            ("state", .string(state.rawValue)), ("error", optional(error)),
            ("segments", .int(segments)), ("bytes", .int(bytes)), ("missed_segments", .int(missed)), ("errors", .int(errors)),
            ("last_segment_at", time(lastSegmentAt)), ("mean_fetch_ms", .double((meanFetchMilliseconds * 10).rounded() / 10)),
            ("media", .raw(JSONText.object([
                ("codec", optional(codec)), ("width", optional(width)), ("height", optional(height)),
                ("fps", fps.map(JSONText.Value.double) ?? .null), ("bitrate", optional(bitrate)),
            ]))),
            ("created_by", optional(createdBy)), ("created_at", time(createdAt)), ("started_at", time(startedAt)), ("stopped_at", time(stoppedAt)),
            ("updated_at", time(updatedAt)), ("owner", optional(owner)), ("metrics_ref", .string(Self.metricsRef(id))),
            ("urls", .raw(JSONText.object([
                ("live", .string(base + "/live.m3u8")), ("vod", .string(base + "/start/{timestamp}/{minutes}/vod.m3u8")),
                ("preview", .string(base + "/preview.jpg")),
            ]))),
        ])
    }

    /// The `recording` label of this recording's series in `/metrics`: the first 12 hex digits of the id's
    /// SHA-256. A recording id is the capability to play it, so it never appears in metrics.
    public static func metricsRef(_ id: String) -> String {
        String(RandomKey.sha256(id).prefix(12))
    }

    /// The Stream Manager's state object (`payload.stream` of a `stateUpdate`) for this recording.
    public var streamStateJSON: String {
        var fields: [(String, JSONText.Value)] = [
            ("isLive", .bool(state == .recording)), ("isPaused", .bool(false)),
            ("fps", .double(fps ?? 0)), ("targetFPS", .double(fps ?? 0)),
            ("frameCount", .int(segments)), ("droppedFrames", .int(missed)),
            ("averageRenderTime", .double((meanFetchMilliseconds * 10).rounded() / 10)),
        ]
        // Optional in the seed's contract: absent, not null.
        if let startedAt { fields.append(("startTime", .int(Int(startedAt * 1000)))) }
        if let error { fields.append(("error", .string(error))) }
        return JSONText.object(fields)
    }

    /// The `recording_state` event's fields: `{"recording": {…}, "stream": {…}}`. The state channel sends the
    /// same object as a `stateUpdate` payload.
    public var statePayload: String {
        "{\"recording\":" + json + ",\"stream\":" + streamStateJSON + "}"
    }

    /// Whether two snapshots differ in what the state channel shows (not just the fetch mean).
    func differsVisibly(from other: Recording) -> Bool {
        var a = self, b = other
        a.meanFetchMilliseconds = 0
        b.meanFetchMilliseconds = 0
        a.updatedAt = 0
        b.updatedAt = 0
        return a != b
    }
}

/// Random recording ids: 128 bits in hex.
enum RecordingID {
    /// 128 random bits in hex (the same form as request ids).
    static func make() -> String { RequestID.make() }

    static func isValid(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}
