import Foundation
import HubCore

extension Playlist {
    /// The playlist as text (LF line ends), in a form ``parse(_:limits:)`` reads back to an equal value.
    public func render() -> String {
        switch self {
        case .master(let master): return master.render()
        case .media(let media): return media.render()
        }
    }
}

extension MasterPlaylist {
    public func render() -> String {
        var out = "#EXTM3U\n"
        if let version { out += "#EXT-X-VERSION:\(version)\n" }
        if independentSegments { out += "#EXT-X-INDEPENDENT-SEGMENTS\n" }
        for variant in variants {
            out += "#EXT-X-STREAM-INF:" + variant.attributes.map { name, value in
                name + "=" + (PlaylistWriter.quotedAttributes.contains(name) || value.contains(",") ? "\"\(value)\"" : value)
            }.joined(separator: ",") + "\n" + variant.uri + "\n"
        }
        return out
    }
}

extension MediaPlaylist {
    public func render() -> String {
        var out = "#EXTM3U\n"
        if let version { out += "#EXT-X-VERSION:\(version)\n" }
        out += "#EXT-X-TARGETDURATION:\(targetDuration)\n"
        out += "#EXT-X-MEDIA-SEQUENCE:\(mediaSequence)\n"
        if discontinuitySequence > 0 { out += "#EXT-X-DISCONTINUITY-SEQUENCE:\(discontinuitySequence)\n" }
        if let playlistType { out += "#EXT-X-PLAYLIST-TYPE:\(playlistType)\n" }
        if independentSegments { out += "#EXT-X-INDEPENDENT-SEGMENTS\n" }
        var key: EncryptionKey?
        var map: MediaInitialization?
        for segment in segments {
            if segment.key != key {
                out += segment.key.map { "#EXT-X-KEY:" + $0.attributes.joined(separator: ",") + "\n" } ?? "#EXT-X-KEY:METHOD=NONE\n"
                key = segment.key
            }
            if segment.map != map, let next = segment.map {
                out += "#EXT-X-MAP:URI=\"\(next.uri)\"" + (next.byteRange.map { ",BYTERANGE=\"\($0)\"" } ?? "") + "\n"
                map = next
            }
            if segment.discontinuity { out += "#EXT-X-DISCONTINUITY\n" }
            if let time = segment.programDateTime { out += "#EXT-X-PROGRAM-DATE-TIME:\(Timestamp.iso8601(time))\n" }
            if let range = segment.byteRange { out += "#EXT-X-BYTERANGE:\(range)\n" }
            out += "#EXTINF:\(PlaylistWriter.duration(segment.duration)),\(segment.title ?? "")\n\(segment.uri)\n"
        }
        if endList { out += "#EXT-X-ENDLIST\n" }
        return out
    }
}

public enum PlaylistWriter {
    /// Attributes whose values are quoted strings (RFC 8216 section 4.3.4.2).
    public static let quotedAttributes: Set<String> = ["CODECS", "AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS", "URI", "NAME", "GROUP-ID", "LANGUAGE",
                                                "ASSOC-LANGUAGE", "CHARACTERISTICS", "INSTREAM-ID", "KEYFORMAT", "KEYFORMATVERSIONS", "BYTERANGE",
                                                "PATHWAY-ID", "STABLE-VARIANT-ID", "STABLE-RENDITION-ID"]

    /// A duration with up to three decimals and no trailing zeros ("2", "1.5", "6.006").
    public static func duration(_ seconds: Double) -> String {
        var text = String(format: "%.3f", seconds)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
