import Foundation
import HLS
@testable import Recorder
import Testing

@Suite struct PlaylistWindowsTests {
    /// 20 two-second segments from sequence 100, starting at t = 1000; a source restart before 110.
    static let index: [RecordedSegment] = (0..<20).map { i in
        RecordedSegment(sequence: 100 + i, fileName: "\(100 + i).ts", duration: 2, startsAt: 1000 + Double(i) * 2, discontinuity: i == 3 || i == 10)
    }

    @Test func theLiveWindowSlides() throws {
        let live = try #require(PlaylistWindows.live(Self.index, count: 5, uriPrefix: "segments/"))
        #expect(live.segments.map(\.sequence) == [115, 116, 117, 118, 119])
        #expect(live.mediaSequence == 115)
        #expect(live.discontinuitySequence == 2, "both discontinuities slid out")
        #expect(live.endList == false)
        #expect(live.segments.first?.uri == "segments/115.ts")
        let earlier = try #require(PlaylistWindows.live(Array(Self.index.prefix(12)), count: 5))
        #expect(earlier.segments.map(\.sequence) == [107, 108, 109, 110, 111])
        #expect(earlier.discontinuitySequence == 1)
        #expect(earlier.segments.map(\.discontinuity) == [false, false, false, true, false])
        // The rendered window parses back as it was.
        #expect(try Playlist.parse(Playlist.media(live).render()) == .media(live))
        #expect(PlaylistWindows.live([], count: 5) == nil)
    }

    @Test func aLiveWindowCanStartInThePast() throws {
        let rewound = try #require(PlaylistWindows.live(Self.index, count: 5, startingAt: 1007))
        #expect(rewound.segments.map(\.sequence) == [103, 104, 105, 106, 107], "from the segment playing at t = 1007")
        #expect(rewound.discontinuitySequence == 0)
        let beforeEverything = try #require(PlaylistWindows.live(Self.index, count: 3, startingAt: 0))
        #expect(beforeEverything.mediaSequence == 100)
        let future = try #require(PlaylistWindows.live(Self.index, count: 3, startingAt: 99_999))
        #expect(future.mediaSequence == 117, "after the end: the live edge")
    }

    @Test func vodWindowsHoldEveryOverlappingSegment() throws {
        let vod = try #require(PlaylistWindows.vod(Self.index, from: 1005, duration: 6))
        #expect(vod.segments.map(\.sequence) == [102, 103, 104, 105], "1004-1006 through 1010-1012")
        #expect(vod.playlistType == "VOD")
        #expect(vod.endList)
        #expect(vod.segments.first?.discontinuity == false, "no discontinuity before the first segment")
        #expect(vod.segments.map(\.discontinuity) == [false, true, false, false])
        #expect(vod.targetDuration == 2)
        let text = Playlist.media(vod).render()
        #expect(text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.hasSuffix("#EXT-X-ENDLIST\n"))
        #expect(PlaylistWindows.vod(Self.index, from: 2000, duration: 60) == nil)
        #expect(PlaylistWindows.vod(Self.index, from: 1040, duration: 60) == nil, "the window starts where the recording ends")
    }

    @Test func timestampsInTheOriginalRecordersForms() {
        #expect(PlaylistWindows.parseTimestamp("1764118923") == 1_764_118_923)
        #expect(PlaylistWindows.parseTimestamp("20261126010203") == 1_795_654_923)
        #expect(PlaylistWindows.parseTimestamp("20260230010203") == nil, "February 30th")
        #expect(PlaylistWindows.parseTimestamp("20261326010203") == nil)
        #expect(PlaylistWindows.parseTimestamp("2026-11-26") == nil)
        #expect(PlaylistWindows.parseTimestamp("") == nil)
        #expect(PlaylistWindows.parseTimestamp("123456789012345") == nil)
    }
}
