import Foundation
import HubCore
import SQLKit
import Wall

/// A program: a live output composed from layers and rendered by ffmpeg (see ``ProgramRenderer``).
public struct Program: Sendable, Equatable {
    /// What the program should be doing; the renderer's own view (live, fps, errors) is ``RenderState``.
    public enum State: String, Sendable {
        case stopped, running, paused
    }

    public var name: String
    public var title: String?
    public var width: Int
    public var height: Int
    public var fps: Int
    /// Video bitrate in kbit/s.
    public var videoBitrate: Int
    /// x264 preset.
    public var preset: String
    /// The source layer whose audio the program carries; `nil` is silence.
    public var audioLayer: Int64?
    public var state: State
    public var version: Int64
    public var createdBy: String?
    public var createdAt: Double
    public var updatedAt: Double
    public var layers: [Layer]
    /// RTMP push targets, beside the local HLS output every program has.
    public var outputs: [Output]
    /// The chat channels its `chat` channel follows: `twitch:somechannel`, `discord:123456789`.
    public var chatChannels: [String]

    static let columns = "name, title, width, height, fps, video_bitrate, preset, audio_layer, state, version, created_by, created_at, updated_at, chat_channels"

    init(row: any SQLRow, layers: [Layer], outputs: [Output]) throws {
        name = try row.decode(column: "name", as: String.self)
        title = try row.decode(column: "title", as: String?.self)
        width = try row.decode(column: "width", as: Int.self)
        height = try row.decode(column: "height", as: Int.self)
        fps = try row.decode(column: "fps", as: Int.self)
        videoBitrate = try row.decode(column: "video_bitrate", as: Int.self)
        preset = try row.decode(column: "preset", as: String.self)
        audioLayer = try row.decode(column: "audio_layer", as: Int64?.self)
        state = State(rawValue: try row.decode(column: "state", as: String.self)) ?? .stopped
        version = try row.decode(column: "version", as: Int64.self)
        createdBy = try row.decode(column: "created_by", as: String?.self)
        createdAt = try row.decode(column: "created_at", as: Double.self)
        updatedAt = try row.decode(column: "updated_at", as: Double.self)
        self.layers = layers
        self.outputs = outputs
        let chat = try row.decode(column: "chat_channels", as: String?.self)
        chatChannels = chat.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] } ?? []
    }

    /// `source:channel` as the chat channel compares it: Twitch channels without `#`, in lowercase.
    public static func chatKey(source: String, channel: String) -> String {
        let name = channel.hasPrefix("#") ? String(channel.dropFirst()) : channel
        return source + ":" + (source == "twitch" ? name.lowercased() : name)
    }

    public static let maxChatChannels = 20

    /// Names are addresses (`/programs/<name>/…`), under the same rule as walls' (`/wall/<name>`): 1-40
    /// lowercase letters, digits or '-', not starting with '-'.
    public static func isValidName(_ name: String) -> Bool {
        Wall.isValidName(name)
    }

    /// x264's presets, fastest first.
    public static let presets = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
    public static let widths = 160...3840
    public static let heights = 90...2160
    public static let frameRates = 1...60
    public static let bitrates = 100...50_000
    /// Most layers in one program.
    public static let maxLayers = 32
    /// Most cells of a wall a wall layer shows (each tile is one decoder running in real time).
    public static let maxWallTiles = 16
    /// The furthest back a source layer may play (`rewind_seconds`): a week.
    public static let maxRewind = 7 * 86_400
    /// Most RTMP outputs of one program (each is one more upload of the encoded stream).
    public static let maxOutputs = 8

    /// Layers bottom to top.
    public var orderedLayers: [Layer] { layers.sorted { ($0.z, $0.id) < ($1.z, $1.id) } }

    public var hlsPath: String { "/programs/\(name)/live.m3u8" }

    func json(render: String) -> String {
        JSONText.object([
            ("name", .string(name)),
            ("title", title.map(JSONText.Value.string) ?? .null),
            ("width", .int(width)),
            ("height", .int(height)),
            ("fps", .int(fps)),
            ("video_bitrate", .int(videoBitrate)),
            ("preset", .string(preset)),
            ("audio_layer_id", audioLayer.map { .int(Int($0)) } ?? .null),
            ("state", .string(state.rawValue)),
            ("version", .int(Int(version))),
            ("hls_url", .string(hlsPath)),
            ("layers", .raw("[" + orderedLayers.map(\.json).joined(separator: ",") + "]")),
            ("outputs", .raw("[" + outputs.map(\.json).joined(separator: ",") + "]")),
            ("chat_channels", .raw("[" + chatChannels.map { JSONText.render(.string($0)) }.joined(separator: ",") + "]")),
            ("stream", .raw(render)),
            ("created_by", createdBy.map(JSONText.Value.string) ?? .null),
            ("created_at", .string(Timestamp.iso8601(createdAt))),
            ("updated_at", .string(Timestamp.iso8601(updatedAt))),
        ])
    }
}

/// One layer of a program: where it sits (output pixels), how opaque it is, and what it shows.
public struct Layer: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// A registry stream, a recording or an HLS URL.
        case source
        /// A wall's tiles as a mosaic.
        case wall
        /// A community's live captions.
        case captions
        case text
        /// An uploaded PNG or JPEG.
        case image
        /// Shown while the program is paused or in place of a source that fails.
        case slate
    }

    public var id: Int64
    public var kind: Kind
    public var z: Int
    public var visible: Bool
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public var opacity: Double
    /// Text of a text layer (or a slate's message).
    public var text: String?
    public var streamID: Int64?
    public var recordingID: String?
    public var url: String?
    public var communityID: Int64?
    public var wall: String?
    public var imageID: String?
    /// What is cut from each side of the picture before it is scaled to the layer (source, wall and image layers).
    public var crop: Crop?
    /// A source layer plays its recording this many seconds behind live (a time-shifted live window), or live.
    public var rewindSeconds: Int?
    /// Colours and font: `color`, `background`, `font_size`, `lines` (captions).
    public var style: Style
    public var updatedAt: Double

    /// Percent of the picture's width (left, right) or height (top, bottom) cut from each side.
    public struct Crop: Sendable, Equatable {
        public var left: Double
        public var top: Double
        public var right: Double
        public var bottom: Double

        var json: String {
            JSONText.object([("left", .double(left)), ("top", .double(top)), ("right", .double(right)), ("bottom", .double(bottom))])
        }

        init(left: Double, top: Double, right: Double, bottom: Double) {
            self.left = left
            self.top = top
            self.right = right
            self.bottom = bottom
        }

        init?(json text: String?) {
            guard let text, let data = text.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            func value(_ key: String) -> Double { (object[key] as? NSNumber)?.doubleValue ?? 0 }
            self.init(left: value("left"), top: value("top"), right: value("right"), bottom: value("bottom"))
        }

        /// ffmpeg's `crop` filter for this cut (in proportions of whatever size the picture has).
        var filter: String {
            func f(_ value: Double) -> String { String(format: "%.4f", value / 100) }
            return "crop=iw*\(f(100 - left - right)):ih*\(f(100 - top - bottom)):iw*\(f(left)):ih*\(f(top))"
        }
    }

    public struct Style: Sendable, Equatable {
        public var color = "#ffffff"
        public var background = "#000000a0"
        public var fontSize = 36
        /// Caption lines shown at once.
        public var lines = 2
        /// A font family (fontconfig's name, like the overlay page's CSS font), or the default (DejaVu Sans).
        public var font: String?
        /// Caption lines disappear this many seconds after they came (0: they stay until pushed out).
        public var fadeSeconds: Double = 0

        /// `#rrggbb` or `#rrggbbaa`.
        static func isColour(_ text: String) -> Bool {
            let digits = text.utf8.dropFirst()
            return text.utf8.first == UInt8(ascii: "#") && (digits.count == 6 || digits.count == 8)
                && digits.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
        }

        var json: String {
            JSONText.object([("color", .string(color)), ("background", .string(background)), ("font_size", .int(fontSize)), ("lines", .int(lines)),
                             ("font", font.map(JSONText.Value.string) ?? .null), ("fade_seconds", .double(fadeSeconds))])
        }

        init() {}

        init(json text: String?) {
            guard let text, let data = text.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
            if let value = object["color"] as? String { color = value }
            if let value = object["background"] as? String { background = value }
            if let value = object["font_size"] as? Int { fontSize = value }
            if let value = object["lines"] as? Int { lines = value }
            if let value = object["font"] as? String { font = value }
            if let value = object["fade_seconds"] as? NSNumber { fadeSeconds = value.doubleValue }
        }
    }

    static let columns = "id, kind, z, visible, x, y, width, height, opacity, text, stream_id, recording_id, url, community_id, wall, image_id, crop, rewind_seconds, style, updated_at"

    public var json: String {
        JSONText.object([
            ("id", .int(Int(id))),
            ("kind", .string(kind.rawValue)),
            ("z", .int(z)),
            ("visible", .bool(visible)),
            ("x", .int(x)), ("y", .int(y)), ("width", .int(width)), ("height", .int(height)),
            ("opacity", .double(opacity)),
            ("text", text.map(JSONText.Value.string) ?? .null),
            ("stream_id", streamID.map { .int(Int($0)) } ?? .null),
            ("recording_id", recordingID.map(JSONText.Value.string) ?? .null),
            ("url", url.map(JSONText.Value.string) ?? .null),
            ("community_id", communityID.map { .int(Int($0)) } ?? .null),
            ("wall", wall.map(JSONText.Value.string) ?? .null),
            ("image_id", imageID.map(JSONText.Value.string) ?? .null),
            ("crop", crop.map { .raw($0.json) } ?? .null),
            ("rewind_seconds", rewindSeconds.map { .int($0) } ?? .null),
            ("style", .raw(style.json)),
            ("updated_at", .string(Timestamp.iso8601(updatedAt))),
        ])
    }
}

extension Layer {
    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int64.self)
        kind = Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .text
        z = try row.decode(column: "z", as: Int.self)
        visible = try row.decode(column: "visible", as: Bool.self)
        x = try row.decode(column: "x", as: Int.self)
        y = try row.decode(column: "y", as: Int.self)
        width = try row.decode(column: "width", as: Int.self)
        height = try row.decode(column: "height", as: Int.self)
        opacity = try row.decode(column: "opacity", as: Double.self)
        text = try row.decode(column: "text", as: String?.self)
        streamID = try row.decode(column: "stream_id", as: Int64?.self)
        recordingID = try row.decode(column: "recording_id", as: String?.self)
        url = try row.decode(column: "url", as: String?.self)
        communityID = try row.decode(column: "community_id", as: Int64?.self)
        wall = try row.decode(column: "wall", as: String?.self)
        imageID = try row.decode(column: "image_id", as: String?.self)
        crop = Crop(json: try row.decode(column: "crop", as: String?.self))
        rewindSeconds = try row.decode(column: "rewind_seconds", as: Int?.self)
        style = Style(json: try row.decode(column: "style", as: String?.self))
        updatedAt = try row.decode(column: "updated_at", as: Double.self)
    }
}

/// An RTMP push target of a program: `rtmp://host[:port]/app/key` (or `rtmps://`). The key is a secret: it
/// is stored, given to ffmpeg, and never shown back or logged in full (see ``masked``).
public struct Output: Sendable, Equatable {
    public var id: Int64
    public var url: String
    public var createdAt: Double

    static let columns = "id, url, created_at"

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int64.self)
        url = try row.decode(column: "url", as: String.self)
        createdAt = try row.decode(column: "created_at", as: Double.self)
    }

    init(id: Int64, url: String, createdAt: Double = 0) {
        self.id = id
        self.url = url
        self.createdAt = createdAt
    }

    /// The URL with its stream key hidden: everything after the application (the path's second segment
    /// on) becomes `…` and the key's last 4 characters, and nothing of a key shorter than 12.
    public var masked: String { Self.mask(url) }

    static func mask(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return "…" }
        let rest = url[schemeEnd.upperBound...]
        let parts = rest.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return String(url[..<schemeEnd.upperBound]) + (parts.first.map(String.init) ?? "") + "/…" }
        let key = parts[2]
        let tail = key.count >= 12 ? String(key.suffix(4)) : ""
        return String(url[..<schemeEnd.upperBound]) + parts[0] + "/" + parts[1] + "/…" + tail
    }

    var json: String {
        JSONText.object([("id", .int(Int(id))), ("url", .string(masked)), ("created_at", .string(Timestamp.iso8601(createdAt)))])
    }
}

extension Program {
    /// A running program not read from the database (plans built in tests and tools).
    init(name: String, width: Int, height: Int, fps: Int, layers: [Layer], videoBitrate: Int = 3000, preset: String = "veryfast") {
        self.name = name
        title = nil
        self.width = width
        self.height = height
        self.fps = fps
        self.videoBitrate = videoBitrate
        self.preset = preset
        audioLayer = nil
        state = .running
        version = 1
        createdBy = nil
        createdAt = 0
        updatedAt = 0
        self.layers = layers
        outputs = []
        chatChannels = []
    }
}
