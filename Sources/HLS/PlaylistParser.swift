import Foundation
import HubCore

extension Playlist {
    /// Parses a playlist. Tolerant of what real servers send — CRLF or CR line ends, a UTF-8 BOM, blank
    /// lines, whitespace around lines, unknown tags, no final newline — and strict where it must be:
    /// every number is checked, every limit holds, and anything it cannot read is a ``PlaylistError``
    /// naming the line, never a crash.
    public static func parse(_ text: String, limits: PlaylistLimits = PlaylistLimits()) throws(PlaylistError) -> Playlist {
        guard text.utf8.count <= limits.maxBytes else { throw .tooLarge(limit: limits.maxBytes) }
        var parser = PlaylistParser(limits: limits)
        return try parser.parse(text)
    }

    /// Parses bytes that should be UTF-8 (invalid sequences are replaced, then fail as text would).
    public static func parse(bytes: some Collection<UInt8>, limits: PlaylistLimits = PlaylistLimits()) throws(PlaylistError) -> Playlist {
        guard bytes.count <= limits.maxBytes else { throw .tooLarge(limit: limits.maxBytes) }
        return try parse(String(decoding: bytes, as: UTF8.self), limits: limits)
    }
}

struct PlaylistParser {
    let limits: PlaylistLimits

    init(limits: PlaylistLimits) {
        self.limits = limits
    }

    // State while reading a media playlist.
    var version: Int?
    var targetDuration: Int?
    var mediaSequence = 0
    var discontinuitySequence = 0
    var playlistType: String?
    var independentSegments = false
    var endList = false
    var segments: [Segment] = []
    var variants: [Variant] = []
    var pendingDuration: (Double, String?)?
    var pendingDiscontinuity = false
    var pendingDateTime: Double?
    var pendingByteRange: ByteRange?
    var pendingVariant: [(String, String)]?
    var currentMap: MediaInitialization?
    var currentKey: EncryptionKey?
    var sawMediaTag = false

    mutating func parse(_ text: String) throws(PlaylistError) -> Playlist {
        var lineNumber = 0
        var first = true
        for rawLine in Self.lines(text) {
            lineNumber += 1
            guard rawLine.utf8.count <= limits.maxLineBytes else { throw .lineTooLong(line: lineNumber, limit: limits.maxLineBytes) }
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if first {
                if line.hasPrefix("\u{FEFF}") { line.removeFirst() }
                guard line == "#EXTM3U" else { throw .notAPlaylist }
                first = false
                continue
            }
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                try tag(line, at: lineNumber)
            } else {
                try uri(line, at: lineNumber)
            }
        }
        guard !first else { throw .notAPlaylist }
        if pendingVariant != nil { throw .invalid(line: lineNumber, reason: "EXT-X-STREAM-INF is not followed by a URI") }
        if !variants.isEmpty {
            guard !sawMediaTag else { throw .invalid(line: lineNumber, reason: "a playlist cannot have both variants and segments") }
            return .master(MasterPlaylist(version: version, independentSegments: independentSegments, variants: variants))
        }
        guard let targetDuration else {
            if segments.isEmpty && !sawMediaTag { throw .invalid(line: lineNumber, reason: "neither variants nor EXT-X-TARGETDURATION") }
            throw .invalid(line: lineNumber, reason: "a media playlist needs EXT-X-TARGETDURATION")
        }
        return .media(MediaPlaylist(version: version, targetDuration: targetDuration, mediaSequence: mediaSequence,
                                    discontinuitySequence: discontinuitySequence, playlistType: playlistType,
                                    independentSegments: independentSegments, endList: endList, segments: segments))
    }

    /// Lines split on LF, CRLF or CR.
    static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
    }

    mutating func tag(_ line: String, at number: Int) throws(PlaylistError) {
        let colon = line.firstIndex(of: ":")
        let name = colon.map { String(line[..<$0]) } ?? line
        let value = colon.map { String(line[line.index(after: $0)...]) } ?? ""
        func integer(_ text: String) throws(PlaylistError) -> Int {
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 0, value < Int(Int32.max) * 1024 else {
                throw .invalid(line: number, reason: "\(name) needs a non-negative integer, not '\(text.prefix(40))'")
            }
            return value
        }
        switch name {
        case "#EXT-X-VERSION": version = try integer(value)
        case "#EXT-X-TARGETDURATION": targetDuration = try integer(value); sawMediaTag = true
        case "#EXT-X-MEDIA-SEQUENCE": mediaSequence = try integer(value); sawMediaTag = true
        case "#EXT-X-DISCONTINUITY-SEQUENCE": discontinuitySequence = try integer(value); sawMediaTag = true
        case "#EXT-X-PLAYLIST-TYPE":
            let type = value.trimmingCharacters(in: .whitespaces).uppercased()
            guard type == "VOD" || type == "EVENT" else { throw .invalid(line: number, reason: "EXT-X-PLAYLIST-TYPE must be VOD or EVENT") }
            playlistType = type
        case "#EXT-X-INDEPENDENT-SEGMENTS": independentSegments = true
        case "#EXT-X-ENDLIST": endList = true; sawMediaTag = true
        case "#EXTINF":
            let parts = value.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)
            guard let first = parts.first, let duration = Double(first.trimmingCharacters(in: .whitespaces)), duration.isFinite, duration >= 0, duration < 86_400 else {
                throw .invalid(line: number, reason: "EXTINF needs a duration in seconds, not '\(value.prefix(40))'")
            }
            let title = parts.count > 1 ? String(parts[1]) : nil
            pendingDuration = (duration, title?.isEmpty == true ? nil : title)
            sawMediaTag = true
        case "#EXT-X-DISCONTINUITY": pendingDiscontinuity = true
        case "#EXT-X-PROGRAM-DATE-TIME":
            guard let time = Timestamp.parse(value.trimmingCharacters(in: .whitespaces)) else {
                throw .invalid(line: number, reason: "EXT-X-PROGRAM-DATE-TIME is not an ISO 8601 time")
            }
            pendingDateTime = time
        case "#EXT-X-BYTERANGE":
            pendingByteRange = try Self.byteRange(value, line: number)
        case "#EXT-X-MAP":
            let attributes = try Self.attributes(value, line: number)
            guard let uri = attributes.first(where: { $0.0 == "URI" })?.1, !uri.isEmpty else { throw .invalid(line: number, reason: "EXT-X-MAP needs a URI") }
            let range = try attributes.first(where: { $0.0 == "BYTERANGE" }).map { pair throws(PlaylistError) in try Self.byteRange(pair.1, line: number) }
            currentMap = MediaInitialization(uri: uri, byteRange: range)
        case "#EXT-X-KEY":
            let attributes = try Self.attributes(value, line: number)
            guard let method = attributes.first(where: { $0.0 == "METHOD" })?.1 else { throw .invalid(line: number, reason: "EXT-X-KEY needs a METHOD") }
            currentKey = method == "NONE" ? nil : EncryptionKey(method: method, uri: attributes.first { $0.0 == "URI" }?.1,
                                                                  attributes: Self.rawAttributes(value))
        case "#EXT-X-STREAM-INF":
            let attributes = try Self.attributes(value, line: number)
            guard attributes.contains(where: { $0.0 == "BANDWIDTH" }) else { throw .invalid(line: number, reason: "EXT-X-STREAM-INF needs BANDWIDTH") }
            pendingVariant = attributes
        default:
            break  // unknown tags and comments are ignored, as RFC 8216 says
        }
    }

    mutating func uri(_ line: String, at number: Int) throws(PlaylistError) {
        if let attributes = pendingVariant {
            pendingVariant = nil
            guard variants.count < limits.maxVariants else { throw .invalid(line: number, reason: "more than \(limits.maxVariants) variants") }
            func int(_ name: String) throws(PlaylistError) -> Int? {
                guard let text = attributes.first(where: { $0.0 == name })?.1 else { return nil }
                guard let value = Int(text), value >= 0 else { throw .invalid(line: number - 1, reason: "\(name) must be a non-negative integer") }
                return value
            }
            var resolution: Resolution?
            if let text = attributes.first(where: { $0.0 == "RESOLUTION" })?.1 {
                let parts = text.lowercased().split(separator: "x")
                guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]), width > 0, height > 0 else {
                    throw .invalid(line: number - 1, reason: "RESOLUTION must look like 1280x720")
                }
                resolution = Resolution(width: width, height: height)
            }
            variants.append(Variant(
                uri: line, bandwidth: try int("BANDWIDTH") ?? 0, averageBandwidth: try int("AVERAGE-BANDWIDTH"), resolution: resolution,
                codecs: attributes.first { $0.0 == "CODECS" }?.1, frameRate: attributes.first { $0.0 == "FRAME-RATE" }.flatMap { Double($0.1) },
                attributes: attributes))
            return
        }
        guard let (duration, title) = pendingDuration else {
            throw .invalid(line: number, reason: "a URI without EXTINF or EXT-X-STREAM-INF before it")
        }
        guard segments.count < limits.maxSegments else { throw .tooManySegments(limit: limits.maxSegments) }
        segments.append(Segment(uri: line, duration: duration, title: title, sequence: mediaSequence + segments.count,
                                discontinuity: pendingDiscontinuity, programDateTime: pendingDateTime, byteRange: pendingByteRange,
                                map: currentMap, key: currentKey))
        pendingDuration = nil
        pendingDiscontinuity = false
        pendingDateTime = nil
        pendingByteRange = nil
    }

    static func byteRange(_ text: String, line: Int) throws(PlaylistError) -> ByteRange {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "@", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let length = Int(parts[0]), length >= 0 else {
            throw .invalid(line: line, reason: "a byte range must look like length[@offset]")
        }
        var offset: Int?
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 0 else { throw .invalid(line: line, reason: "a byte range offset must be a non-negative integer") }
            offset = value
        }
        return ByteRange(length: length, offset: offset)
    }

    /// An attribute list: `NAME=value,NAME="quoted, value"` (quotes removed).
    static func attributes(_ text: String, line: Int) throws(PlaylistError) -> [(String, String)] {
        var result: [(String, String)] = []
        for raw in rawAttributes(text) {
            guard let equals = raw.firstIndex(of: "=") else { throw .invalid(line: line, reason: "attribute '\(raw.prefix(40))' has no value") }
            let name = raw[..<equals].trimmingCharacters(in: .whitespaces)
            var value = raw[raw.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else { throw .invalid(line: line, reason: "attribute \(name) has an unclosed quote") }
                value = String(value.dropFirst().dropLast())
            }
            guard !name.isEmpty else { throw .invalid(line: line, reason: "an attribute has no name") }
            result.append((name, value))
        }
        return result
    }

    /// The attributes as written (`NAME=value` pieces), split on commas outside quotes.
    static func rawAttributes(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if character == "," && !quoted {
                if !current.trimmingCharacters(in: .whitespaces).isEmpty { pieces.append(current.trimmingCharacters(in: .whitespaces)) }
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty { pieces.append(current.trimmingCharacters(in: .whitespaces)) }
        return pieces
    }
}

extension Playlist {
    /// `uri` resolved against the playlist's own URL (absolute URIs stay as they are).
    public static func resolve(_ uri: String, against base: String) -> String? {
        URL(string: uri, relativeTo: URL(string: base))?.absoluteString
    }
}
