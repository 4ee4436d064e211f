import Foundation
import HubCore

/// What a program's renderer is doing, in the seed's `payload.stream` shape.
public struct RenderState: Sendable, Equatable {
    public var isLive = false
    public var isPaused = false
    /// Frames per second measured over the last progress report.
    public var fps: Double = 0
    public var targetFPS: Int
    public var frameCount = 0
    /// Frames ffmpeg dropped plus frames it duplicated to keep the rate.
    public var droppedFrames = 0
    /// Milliseconds of wall time per frame over the last progress report.
    public var averageRenderTime: Double = 0
    /// Encode speed relative to real time (1.0 keeps up).
    public var speed: Double = 0
    public var startTime: Double?
    public var error: String?
    /// ffmpeg restarts since the program started (crashes and graph changes).
    public var restarts = 0
    /// Changes applied to the running ffmpeg without a restart (visibility, position, pause).
    public var liveChanges = 0
    /// Output bitrate in kbit/s, measured on the newest HLS segments.
    public var bitrate: Double = 0
    /// Per RTMP output: failed connects or writes since the program started (each is followed by a
    /// reconnect a second later), and the last error with the key masked.
    public var outputs: [Int64: OutputState] = [:]

    public struct OutputState: Sendable, Equatable {
        public var failures = 0
        public var lastError: String?
        public var lastErrorAt: Double?
    }

    public init(targetFPS: Int) {
        self.targetFPS = targetFPS
    }

    public var json: String {
        JSONText.object([
            ("isLive", .bool(isLive)), ("isPaused", .bool(isPaused)), ("fps", .double((fps * 100).rounded() / 100)), ("targetFPS", .int(targetFPS)),
            ("frameCount", .int(frameCount)), ("droppedFrames", .int(droppedFrames)),
            ("averageRenderTime", .double((averageRenderTime * 100).rounded() / 100)), ("speed", .double((speed * 1000).rounded() / 1000)),
            ("startTime", Timestamp.jsonValue(startTime)), ("error", error.map(JSONText.Value.string) ?? .null),
            ("restarts", .int(restarts)), ("liveChanges", .int(liveChanges)), ("bitrate", .double((bitrate * 10).rounded() / 10)),
            ("outputs", .raw("[" + outputs.sorted { $0.key < $1.key }.map { id, output in
                JSONText.object([("id", .int(Int(id))), ("failures", .int(output.failures)),
                                 ("lastError", output.lastError.map(JSONText.Value.string) ?? .null),
                                 ("lastErrorAt", Timestamp.jsonValue(output.lastErrorAt))])
            }.joined(separator: ",") + "]")),
        ])
    }
}

/// Reads ffmpeg's `-progress` output: blocks of `key=value` lines, each ending with `progress=continue`
/// (or `end`).
struct ProgressParser {
    private var block: [String: String] = [:]
    /// Recent (time, frame) samples: rates are measured over the last few seconds, not one report's
    /// half second (ffmpeg's reports are bursty).
    private var samples: [(time: Double, frame: Int)] = []
    static let window = 3.0

    struct Report: Equatable {
        var frame: Int
        var fps: Double
        var dropped: Int
        var speed: Double
        /// Milliseconds of wall time per frame since the previous report.
        var renderTime: Double?
        var ended: Bool
    }

    /// Feeds one line; answers a report when it completes a block.
    mutating func feed(_ line: Substring, now: Double) -> Report? {
        guard let equals = line.firstIndex(of: "=") else { return nil }
        let key = String(line[..<equals]).trimmingCharacters(in: .whitespaces)
        let value = String(line[line.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        guard key == "progress" else {
            block[key] = value
            return nil
        }
        defer { block = [:] }
        let frame = Int(block["frame"] ?? "") ?? 0
        let dropped = (Int(block["drop_frames"] ?? "") ?? 0) + (Int(block["dup_frames"] ?? "") ?? 0)
        let speed = Double((block["speed"] ?? "").replacingOccurrences(of: "x", with: "")) ?? 0
        var renderTime: Double?
        var measured = Double(block["fps"] ?? "") ?? 0
        if let first = samples.first, frame > first.frame, now > first.time {
            renderTime = (now - first.time) * 1000 / Double(frame - first.frame)
            measured = Double(frame - first.frame) / (now - first.time)
        }
        if frame < (samples.last?.frame ?? 0) { samples.removeAll() }
        samples.append((now, frame))
        while samples.count > 2, let first = samples.first, now - first.time > Self.window { samples.removeFirst() }
        return Report(frame: frame, fps: measured, dropped: dropped, speed: speed, renderTime: renderTime, ended: value == "end")
    }
}
