import Foundation
import Testing
@testable import HLS

@Suite struct PlaylistTests {
    @Test func readsALiveMediaPlaylistAsServersWriteIt() throws {
        let text = "\u{FEFF}#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-TARGETDURATION:2\r\n\r\n#EXT-X-MEDIA-SEQUENCE:120\r\n"
            + "#EXT-X-DISCONTINUITY-SEQUENCE:3\r\n#EXT-X-PROGRAM-DATE-TIME:2026-11-26T01:02:03.500Z\r\n#EXTINF:2.000,live\r\n"
            + "seg120.ts\r\n#EXTINF:1.96,\r\n  https://cdn.example.net/a/seg121.ts?x=1  \r\n#EXT-X-DISCONTINUITY\r\n#EXT-X-UNKNOWN-TAG:whatever\r\n"
            + "# a comment\r\n#EXTINF:2,\r\n../b/seg122.ts"
        guard case .media(let playlist) = try Playlist.parse(text) else { Issue.record("not a media playlist"); return }
        #expect(playlist.version == 3)
        #expect(playlist.targetDuration == 2)
        #expect(playlist.mediaSequence == 120)
        #expect(playlist.discontinuitySequence == 3)
        #expect(playlist.endList == false)
        #expect(playlist.segments.map(\.uri) == ["seg120.ts", "https://cdn.example.net/a/seg121.ts?x=1", "../b/seg122.ts"])
        #expect(playlist.segments.map(\.sequence) == [120, 121, 122])
        #expect(playlist.segments.map(\.duration) == [2, 1.96, 2])
        #expect(playlist.segments.map(\.discontinuity) == [false, false, true])
        #expect(playlist.segments[0].title == "live")
        #expect(playlist.segments[0].programDateTime == 1_795_654_923.5)
        #expect(playlist.segments[1].programDateTime == nil)
        #expect(Playlist.resolve(playlist.segments[2].uri, against: "https://origin.example/live/a/index.m3u8") == "https://origin.example/live/b/seg122.ts")
    }

    @Test func readsAMasterPlaylistAndChoosesVariants() throws {
        let text = """
            #EXTM3U
            #EXT-X-INDEPENDENT-SEGMENTS
            #EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2300000,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2",FRAME-RATE=30.000
            720p/index.m3u8
            #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"
            360p/index.m3u8
            #EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080
            https://cdn.example.net/1080p.m3u8
            """
        guard case .master(let master) = try Playlist.parse(text) else { Issue.record("not a master playlist"); return }
        #expect(master.variants.count == 3)
        #expect(master.variants[0].codecs == "avc1.4d401f,mp4a.40.2")
        #expect(master.variants[0].resolution == Resolution(width: 1280, height: 720))
        #expect(master.variants[0].frameRate == 30)
        #expect(master.variant(.best)?.uri == "https://cdn.example.net/1080p.m3u8")
        #expect(master.variant(.worst)?.uri == "360p/index.m3u8")
        #expect(master.variant(.maxBandwidth(3_000_000))?.uri == "720p/index.m3u8")
        #expect(master.variant(.maxBandwidth(100))?.uri == "360p/index.m3u8")
        #expect(VariantChoice("best") == .best && VariantChoice("1000") == .maxBandwidth(1000) && VariantChoice("-1") == nil)
    }

    @Test func keepsByteRangesMapsAndKeys() throws {
        let text = """
            #EXTM3U
            #EXT-X-VERSION:7
            #EXT-X-TARGETDURATION:4
            #EXT-X-PLAYLIST-TYPE:VOD
            #EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"
            #EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k1",IV=0x00000000000000000000000000000001
            #EXTINF:4.0,
            #EXT-X-BYTERANGE:1000@720
            media.mp4
            #EXT-X-BYTERANGE:2000
            #EXTINF:4.0,
            media.mp4
            #EXT-X-KEY:METHOD=NONE
            #EXTINF:3.5,
            clear.mp4
            #EXT-X-ENDLIST
            """
        guard case .media(let playlist) = try Playlist.parse(text) else { Issue.record("not a media playlist"); return }
        #expect(playlist.playlistType == "VOD")
        #expect(playlist.endList)
        #expect(playlist.segments[0].map == MediaInitialization(uri: "init.mp4", byteRange: ByteRange(length: 720, offset: 0)))
        #expect(playlist.segments[0].byteRange == ByteRange(length: 1000, offset: 720))
        #expect(playlist.segments[1].byteRange == ByteRange(length: 2000, offset: nil))
        #expect(playlist.segments[0].key?.method == "AES-128")
        #expect(playlist.segments[0].key?.uri == "https://keys.example/k1")
        #expect(playlist.segments[1].key == playlist.segments[0].key)
        #expect(playlist.segments[2].key == nil)
        #expect(playlist.segments[2].map == playlist.segments[0].map)
        // Written back and read again, nothing changes.
        #expect(try Playlist.parse(Playlist.media(playlist).render()) == .media(playlist))
    }

    @Test(arguments: [
        ("", PlaylistError.notAPlaylist),
        ("<html>hello</html>", .notAPlaylist),
        ("#EXTM3U", .invalid(line: 1, reason: "neither variants nor EXT-X-TARGETDURATION")),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:x", .invalid(line: 2, reason: "#EXT-X-TARGETDURATION needs a non-negative integer, not 'x'")),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:-3", .invalid(line: 2, reason: "#EXT-X-TARGETDURATION needs a non-negative integer, not '-3'")),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\na.ts", .invalid(line: 3, reason: "EXTINF needs a duration in seconds, not 'abc,'")),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:nan,\na.ts", .invalid(line: 3, reason: "EXTINF needs a duration in seconds, not 'nan,'")),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts", .invalid(line: 3, reason: "a URI without EXTINF or EXT-X-STREAM-INF before it")),
        ("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nv.m3u8", .invalid(line: 2, reason: "EXT-X-STREAM-INF needs BANDWIDTH")),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1", .invalid(line: 2, reason: "EXT-X-STREAM-INF is not followed by a URI")),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"a\nv.m3u8", .invalid(line: 2, reason: "attribute CODECS has an unclosed quote")),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:a@b\n#EXTINF:1,\na.ts", .invalid(line: 3, reason: "a byte range must look like length[@offset]")),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n#EXTINF:1,\na.ts", .invalid(line: 3, reason: "EXT-X-PROGRAM-DATE-TIME is not an ISO 8601 time")),
    ])
    func refusesWhatItCannotRead(_ text: String, _ expected: PlaylistError) {
        #expect(throws: expected) { try Playlist.parse(text) }
    }

    @Test func hostilePlaylistsHitTheLimitsNotTheMemory() {
        var limits = PlaylistLimits()
        limits.maxSegments = 1000
        let huge = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + String(repeating: "#EXTINF:1,\na.ts\n", count: 1001)
        #expect(throws: PlaylistError.tooManySegments(limit: 1000)) { try Playlist.parse(huge, limits: limits) }
        let longLine = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1," + String(repeating: "x", count: 1 << 20) + "\na.ts\n"
        #expect(throws: PlaylistError.lineTooLong(line: 3, limit: 64 << 10)) { try Playlist.parse(longLine) }
        limits.maxBytes = 1024
        #expect(throws: PlaylistError.tooLarge(limit: 1024)) { try Playlist.parse(String(repeating: "#", count: 2000), limits: limits) }
    }

    /// Property: every playlist the writer produces parses back to itself.
    @Test func renderedPlaylistsParseBackToThemselves() throws {
        var generator = SeededGenerator(seed: 0x5EED)
        for _ in 0..<300 {
            let playlist = Self.randomMediaPlaylist(&generator)
            #expect(try Playlist.parse(playlist.render()) == .media(playlist))
        }
    }

    /// Fuzz: mutated and random inputs never crash the parser; they parse or throw a PlaylistError. Runs for
    /// a bounded time (or a fixed number of inputs), as part of the test command.
    @Test func fuzzedInputsNeverCrashTheParser() {
        var generator = SeededGenerator(seed: 0xF022)
        let seeds = [
            Self.randomMediaPlaylist(&generator).render(),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2,CODECS=\"a,b\"\nv.m3u8\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"1@0\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:4,\n#EXT-X-BYTERANGE:5@1\nm.mp4\n#EXT-X-ENDLIST\n",
        ]
        let alphabet = Array("#EXT-X-:,=\"@.0123456789\n\r ABCDEFGHIJKLMNOPQRSTUVWXYZaxm3u8/\u{FEFF}é")
        let deadline = Date().addingTimeInterval(3)
        var runs = 0
        while runs < 20_000 && Date() < deadline {
            var text = Array(seeds[runs % seeds.count])
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let position = text.isEmpty ? 0 : Int.random(in: 0..<text.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0 where !text.isEmpty: text.remove(at: position)
                case 1: text.insert(alphabet.randomElement(using: &generator)!, at: position)
                case 2 where !text.isEmpty: text[position] = alphabet.randomElement(using: &generator)!
                default: text.insert(contentsOf: text.prefix(Int.random(in: 0...40, using: &generator)), at: position)
                }
            }
            do { _ = try Playlist.parse(String(text)) } catch {}
            let bytes = (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            do { _ = try Playlist.parse(bytes: bytes) } catch {}
            runs += 1
        }
        #expect(runs >= 1000)
    }

    static func randomMediaPlaylist(_ generator: inout SeededGenerator) -> MediaPlaylist {
        let sequence = Int.random(in: 0...1_000_000, using: &generator)
        var segments: [Segment] = []
        let key = EncryptionKey(method: "AES-128", uri: "https://k.example/\(sequence)", attributes: ["METHOD=AES-128", "URI=\"https://k.example/\(sequence)\""])
        let map = MediaInitialization(uri: "init-\(sequence).mp4", byteRange: Bool.random(using: &generator) ? ByteRange(length: 700, offset: 0) : nil)
        let keyed = Bool.random(using: &generator)
        let mapped = Bool.random(using: &generator)
        for index in 0..<Int.random(in: 0...30, using: &generator) {
            segments.append(Segment(
                uri: "seg\(sequence + index).\(mapped ? "m4s" : "ts")", duration: Double(Int.random(in: 1...6000, using: &generator)) / 1000,
                title: Bool.random(using: &generator) ? nil : "t\(index)", sequence: sequence + index,
                discontinuity: Int.random(in: 0..<8, using: &generator) == 0,
                programDateTime: Bool.random(using: &generator) ? 1_764_000_000 + Double(index * 2) + 0.25 : nil,
                byteRange: Int.random(in: 0..<5, using: &generator) == 0 ? ByteRange(length: Int.random(in: 1...9999, using: &generator), offset: nil) : nil,
                map: mapped ? map : nil, key: keyed ? key : nil))
        }
        return MediaPlaylist(version: Bool.random(using: &generator) ? 3 : nil, targetDuration: 6, mediaSequence: sequence,
                             discontinuitySequence: Int.random(in: 0...3, using: &generator), playlistType: Bool.random(using: &generator) ? "EVENT" : nil,
                             independentSegments: Bool.random(using: &generator), endList: Bool.random(using: &generator), segments: segments)
    }
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
