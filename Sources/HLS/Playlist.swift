import Foundation
import HubCore

/// An HLS playlist (RFC 8216): a master playlist of variants, or a media playlist of segments.
public enum Playlist: Sendable, Equatable {
    case master(MasterPlaylist)
    case media(MediaPlaylist)
}

/// A master playlist: the variants of one stream.
public struct MasterPlaylist: Sendable, Equatable {
    public var version: Int?
    public var independentSegments = false
    public var variants: [Variant] = []

    public init(version: Int? = nil, independentSegments: Bool = false, variants: [Variant] = []) {
        self.version = version
        self.independentSegments = independentSegments
        self.variants = variants
    }

    /// The variant `choice` asks for: `best` (highest bandwidth), `worst`, or the best at or under a
    /// bandwidth (the worst when none is).
    public func variant(_ choice: VariantChoice) -> Variant? {
        let sorted = variants.sorted { $0.bandwidth < $1.bandwidth }
        switch choice {
        case .best: return sorted.last
        case .worst: return sorted.first
        case .maxBandwidth(let limit): return sorted.last { $0.bandwidth <= limit } ?? sorted.first
        }
    }
}

/// Which variant of a master playlist to record.
public enum VariantChoice: Sendable, Equatable {
    case best, worst, maxBandwidth(Int)

    /// `best`, `worst`, or a number of bits per second.
    public init?(_ text: String) {
        switch text.lowercased() {
        case "best": self = .best
        case "worst": self = .worst
        default:
            guard let limit = Int(text), limit > 0 else { return nil }
            self = .maxBandwidth(limit)
        }
    }
}

/// One `EXT-X-STREAM-INF` entry.
public struct Variant: Sendable, Equatable {
    public var uri: String
    public var bandwidth: Int
    public var averageBandwidth: Int?
    public var resolution: Resolution?
    public var codecs: String?
    public var frameRate: Double?
    /// Every attribute as written, for what this type does not model (AUDIO, SUBTITLES, …).
    public var attributes: [(String, String)]

    public static func == (lhs: Variant, rhs: Variant) -> Bool {
        lhs.uri == rhs.uri && lhs.bandwidth == rhs.bandwidth && lhs.averageBandwidth == rhs.averageBandwidth && lhs.resolution == rhs.resolution
            && lhs.codecs == rhs.codecs && lhs.frameRate == rhs.frameRate && lhs.attributes.map { $0.0 + "=" + $0.1 } == rhs.attributes.map { $0.0 + "=" + $0.1 }
    }
}

public struct Resolution: Sendable, Equatable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public var description: String { "\(width)x\(height)" }

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}

/// A media playlist: the segments of one rendition.
public struct MediaPlaylist: Sendable, Equatable {
    public var version: Int?
    public var targetDuration: Int
    /// The media sequence number of the first segment.
    public var mediaSequence: Int = 0
    public var discontinuitySequence: Int = 0
    /// `VOD` or `EVENT`, when given.
    public var playlistType: String?
    public var independentSegments = false
    public var endList = false
    public var segments: [Segment] = []

    public init(version: Int? = nil, targetDuration: Int, mediaSequence: Int = 0, discontinuitySequence: Int = 0, playlistType: String? = nil,
                independentSegments: Bool = false, endList: Bool = false, segments: [Segment] = []) {
        self.version = version
        self.targetDuration = targetDuration
        self.mediaSequence = mediaSequence
        self.discontinuitySequence = discontinuitySequence
        self.playlistType = playlistType
        self.independentSegments = independentSegments
        self.endList = endList
        self.segments = segments
    }
}

/// One media segment with everything that applies to it.
public struct Segment: Sendable, Equatable {
    public var uri: String
    public var duration: Double
    public var title: String?
    /// Media sequence number.
    public var sequence: Int
    /// An `EXT-X-DISCONTINUITY` comes before this segment.
    public var discontinuity = false
    /// `EXT-X-PROGRAM-DATE-TIME`, seconds since 1970.
    public var programDateTime: Double?
    public var byteRange: ByteRange?
    /// The `EXT-X-MAP` (fMP4 initialisation section) in force.
    public var map: MediaInitialization?
    /// The `EXT-X-KEY` in force, kept as written.
    public var key: EncryptionKey?

    public init(uri: String, duration: Double, title: String? = nil, sequence: Int, discontinuity: Bool = false, programDateTime: Double? = nil,
                byteRange: ByteRange? = nil, map: MediaInitialization? = nil, key: EncryptionKey? = nil) {
        self.uri = uri
        self.duration = duration
        self.title = title
        self.sequence = sequence
        self.discontinuity = discontinuity
        self.programDateTime = programDateTime
        self.byteRange = byteRange
        self.map = map
        self.key = key
    }
}

/// `EXT-X-BYTERANGE` / the `BYTERANGE` attribute: `length[@offset]`.
public struct ByteRange: Sendable, Equatable, CustomStringConvertible {
    public var length: Int
    /// `nil` means "right after the previous range of the same resource".
    public var offset: Int?

    public var description: String { offset.map { "\(length)@\($0)" } ?? "\(length)" }

    public init(length: Int, offset: Int? = nil) {
        self.length = length
        self.offset = offset
    }
}

/// `EXT-X-MAP`.
public struct MediaInitialization: Sendable, Equatable {
    public var uri: String
    public var byteRange: ByteRange?

    public init(uri: String, byteRange: ByteRange? = nil) {
        self.uri = uri
        self.byteRange = byteRange
    }
}

/// `EXT-X-KEY`, with its attributes as written (passed through, never interpreted beyond METHOD and URI).
public struct EncryptionKey: Sendable, Equatable {
    public var method: String
    public var uri: String?
    public var attributes: [String]

    public init(method: String, uri: String? = nil, attributes: [String]) {
        self.method = method
        self.uri = uri
        self.attributes = attributes
    }

    public static func == (lhs: EncryptionKey, rhs: EncryptionKey) -> Bool {
        lhs.method == rhs.method && lhs.uri == rhs.uri && lhs.attributes == rhs.attributes
    }
}

/// Why a playlist was refused.
public enum PlaylistError: Error, Equatable, CustomStringConvertible {
    case notAPlaylist
    case tooLarge(limit: Int)
    case lineTooLong(line: Int, limit: Int)
    case tooManySegments(limit: Int)
    case invalid(line: Int, reason: String)

    public var description: String {
        switch self {
        case .notAPlaylist: return "not an HLS playlist (it does not start with #EXTM3U)"
        case .tooLarge(let limit): return "the playlist is larger than \(limit) bytes"
        case .lineTooLong(let line, let limit): return "line \(line) is longer than \(limit) bytes"
        case .tooManySegments(let limit): return "the playlist has more than \(limit) segments"
        case .invalid(let line, let reason): return "line \(line): \(reason)"
        }
    }
}

/// Limits that keep a hostile playlist from costing more than a real one.
public struct PlaylistLimits: Sendable {
    public var maxBytes = 16 << 20
    public var maxLineBytes = 64 << 10
    public var maxSegments = 100_000
    public var maxVariants = 1_000

    public init() {}
}
