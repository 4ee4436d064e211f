import Foundation
import HLS

/// A recorded segment as the recording's index knows it.
public struct RecordedSegment: Sendable, Equatable {
    /// The source's media sequence number.
    public var sequence: Int
    public var fileName: String
    public var duration: Double
    /// When it starts: the source's program date time, or the arrival time (seconds since 1970).
    public var startsAt: Double
    /// Playback must reset before it (a source restart, a gap of missed segments).
    public var discontinuity: Bool
    /// The file name of the fMP4 initialisation section it needs, if any.
    public var map: String?
    /// The source's `EXT-X-KEY`, passed through (URI made absolute).
    public var key: EncryptionKey?

    public init(sequence: Int, fileName: String, duration: Double, startsAt: Double, discontinuity: Bool = false,
                map: String? = nil, key: EncryptionKey? = nil) {
        self.sequence = sequence
        self.fileName = fileName
        self.duration = duration
        self.startsAt = startsAt
        self.discontinuity = discontinuity
        self.map = map
        self.key = key
    }

    public var endsAt: Double { startsAt + duration }
}

/// The playlists a recording serves, built from its index: the sliding live window and VOD windows.
public enum PlaylistWindows {
    /// `live.m3u8`: the last `count` segments — or, with `startingAt`, `count` segments from the one playing
    /// at that moment — with the media sequence of the first and a discontinuity sequence counting the
    /// discontinuities that slid out. `segments` are in sequence order. `nil` when there is nothing yet.
    ///
    /// `discontinuitiesBefore` counts the discontinuities of segments older than `segments` (when `segments`
    /// is only the recent end of the index).
    public static func live(_ segments: [RecordedSegment], count: Int = 5, startingAt moment: Double? = nil, uriPrefix: String = "",
                            discontinuitiesBefore: Int = 0) -> MediaPlaylist? {
        guard !segments.isEmpty, count > 0 else { return nil }
        var start = max(0, segments.count - count)
        if let moment {
            start = segments.firstIndex { $0.endsAt > moment } ?? max(0, segments.count - count)
        }
        let window = segments[start..<min(segments.count, start + count)]
        return playlist(window, discontinuitiesBefore: discontinuitiesBefore + segments[..<start].filter(\.discontinuity).count,
                        uriPrefix: uriPrefix, ended: false)
    }

    /// `vod.m3u8`: every segment overlapping [`start`, `start + duration`), as a finished VOD playlist.
    /// `nil` when no segment overlaps.
    public static func vod(_ segments: [RecordedSegment], from start: Double, duration: Double, uriPrefix: String = "") -> MediaPlaylist? {
        let end = start + duration
        let window = segments.filter { $0.endsAt > start && $0.startsAt < end }
        guard !window.isEmpty else { return nil }
        var playlist = playlist(window[...], discontinuitiesBefore: 0, uriPrefix: uriPrefix, ended: true)
        playlist.playlistType = "VOD"
        // A VOD playlist starts clean: a discontinuity before its first segment means nothing.
        playlist.segments[0].discontinuity = false
        return playlist
    }

    static func playlist(_ window: ArraySlice<RecordedSegment>, discontinuitiesBefore: Int, uriPrefix: String, ended: Bool) -> MediaPlaylist {
        let longest = window.map(\.duration).max() ?? 1
        let usesMap = window.contains { $0.map != nil }
        return MediaPlaylist(
            version: usesMap ? 6 : 3, targetDuration: max(1, Int(longest.rounded(.up))), mediaSequence: window.first?.sequence ?? 0,
            discontinuitySequence: discontinuitiesBefore, endList: ended,
            segments: window.map { segment in
                Segment(uri: uriPrefix + segment.fileName, duration: segment.duration, sequence: segment.sequence,
                        discontinuity: segment.discontinuity, programDateTime: segment.startsAt,
                        map: segment.map.map { MediaInitialization(uri: uriPrefix + $0, byteRange: nil) }, key: segment.key)
            })
    }

    /// The original recorder's timestamps: Unix seconds, or `YYYYMMDDHHMMSS` in UTC.
    public static func parseTimestamp(_ text: String) -> Double? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        if text.count == 14 {
            let digits = Array(text)
            func number(_ range: Range<Int>) -> Int { Int(String(digits[range])) ?? -1 }
            let (year, month, day) = (number(0..<4), number(4..<6), number(6..<8))
            let (hour, minute, second) = (number(8..<10), number(10..<12), number(12..<14))
            guard (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day),
                  (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
            else { return nil }
            var components = DateComponents()
            (components.year, components.month, components.day) = (year, month, day)
            (components.hour, components.minute, components.second) = (hour, minute, second)
            guard let utc = TimeZone(secondsFromGMT: 0) else { return nil }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = utc
            guard let date = calendar.date(from: components), calendar.component(.day, from: date) == day else { return nil }
            return date.timeIntervalSince1970
        }
        guard text.count <= 11, let seconds = Double(text) else { return nil }
        return seconds
    }
}
