import Registry
import Testing
@testable import Discovery

/// Realistic chat messages and the stream links a volunteer would want from them (none for the rest).
let linkCases: [(message: String, links: [String])] = [
    // Twitch channels and videos
    ("LIVE NOW https://www.twitch.tv/SomeStreamer", ["https://twitch.tv/somestreamer"]),
    ("twitch.tv/unicornriot is live from the bridge", ["https://twitch.tv/unicornriot"]),
    ("check out <https://twitch.tv/Foo_Bar>", ["https://twitch.tv/foo_bar"]),
    ("[stream](https://www.twitch.tv/foo_bar) happening now", ["https://twitch.tv/foo_bar"]),
    ("https://twitch.tv/foo_bar.", ["https://twitch.tv/foo_bar"]),
    ("https://twitch.tv/foo_bar!!", ["https://twitch.tv/foo_bar"]),
    ("(https://twitch.tv/foo_bar)", ["https://twitch.tv/foo_bar"]),
    ("m.twitch.tv/foo_bar", ["https://twitch.tv/foo_bar"]),
    ("https://www.twitch.tv/videos/1234567890", ["https://twitch.tv/videos/1234567890"]),
    ("https://twitch.tv/foo_bar/video/2233445566", ["https://twitch.tv/videos/2233445566"]),
    ("https://player.twitch.tv/?channel=SomeOne&parent=example.org", ["https://twitch.tv/someone"]),
    ("https://twitch.tv/foo_bar?utm_source=share", ["https://twitch.tv/foo_bar"]),
    ("https://twitch.tv/directory/game/Just%20Chatting", []),
    ("https://clips.twitch.tv/FunnyClipName-abc123", []),
    ("https://www.twitch.tv/foo_bar/clip/SomeClip-xyz", []),
    ("https://twitch.tv/settings/profile", []),
    ("https://twitch.tv/", []),
    ("twitch.tv/ab", []),
    ("**https://twitch.tv/boldchannel**", ["https://twitch.tv/boldchannel"]),
    ("_twitch.tv/italicchannel_", ["https://twitch.tv/italicchannel"]),
    ("~~twitch.tv/oldchannel~~ now at twitch.tv/newchannel", ["https://twitch.tv/oldchannel", "https://twitch.tv/newchannel"]),
    // YouTube
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", ["https://youtube.com/watch?v=dQw4w9WgXcQ"]),
    ("https://youtube.com/watch?v=dQw4w9WgXcQ&t=42s&feature=share", ["https://youtube.com/watch?v=dQw4w9WgXcQ"]),
    ("https://youtu.be/dQw4w9WgXcQ?si=AbCdEf", ["https://youtube.com/watch?v=dQw4w9WgXcQ"]),
    ("youtu.be/dQw4w9WgXcQ", ["https://youtube.com/watch?v=dQw4w9WgXcQ"]),
    ("https://www.youtube.com/live/jfKfPfyJRdk?si=xyz", ["https://youtube.com/watch?v=jfKfPfyJRdk"]),
    ("https://m.youtube.com/watch?v=jfKfPfyJRdk", ["https://youtube.com/watch?v=jfKfPfyJRdk"]),
    ("https://www.youtube.com/@NewsChannel/live", ["https://youtube.com/@newschannel/live"]),
    ("https://youtube.com/@newschannel", []),
    ("https://youtube.com/@newschannel/videos", []),
    ("https://www.youtube.com/shorts/abcdefghijk", ["https://youtube.com/shorts/abcdefghijk"]),
    ("https://www.youtube.com/channel/UC1234567890abcdefghijkl/live", ["https://youtube.com/channel/UC1234567890abcdefghijkl/live"]),
    ("https://www.youtube.com/c/SomeName/live", ["https://youtube.com/c/SomeName/live"]),
    ("https://www.youtube.com/embed/jfKfPfyJRdk", ["https://youtube.com/watch?v=jfKfPfyJRdk"]),
    ("https://www.youtube.com/watch?v=short", []),
    ("https://www.youtube.com/playlist?list=PL1234", []),
    ("https://www.youtube.com/", []),
    ("https://www.youtube.com/results?search_query=protest", []),
    // TikTok
    ("https://www.tiktok.com/@someuser/live", ["https://tiktok.com/@someuser/live"]),
    ("tiktok.com/@Some.User/live?lang=en", ["https://tiktok.com/@some.user/live"]),
    ("https://www.tiktok.com/@someuser/video/7300000000000000000", []),
    ("https://www.tiktok.com/@someuser", []),
    ("https://www.tiktok.com/foryou", []),
    // Kick
    ("https://kick.com/SomeKicker", ["https://kick.com/somekicker"]),
    ("kick.com/somekicker is up", ["https://kick.com/somekicker"]),
    ("https://kick.com/somekicker/videos/0b2f-44aa", ["https://kick.com/somekicker/videos/0b2f-44aa"]),
    ("https://kick.com/categories/irl", []),
    ("https://kick.com/somekicker/clips/clip_01", []),
    ("https://kick.com/", []),
    // Facebook
    ("https://www.facebook.com/NewsPage/videos/1234567890123456/", ["https://facebook.com/NewsPage/videos/1234567890123456"]),
    ("https://www.facebook.com/watch/live/?v=1234567890", ["https://facebook.com/watch?v=1234567890"]),
    ("https://m.facebook.com/watch/?v=987654321", ["https://facebook.com/watch?v=987654321"]),
    ("https://fb.watch/abcDEF123/", ["https://fb.watch/abcDEF123"]),
    ("https://www.facebook.com/SomePage/live", ["https://facebook.com/SomePage/live"]),
    ("https://www.facebook.com/SomePage", []),
    ("https://www.facebook.com/groups/123456/posts/789", []),
    ("https://www.facebook.com/photo/?fbid=123", []),
    // Instagram
    ("https://www.instagram.com/some.user/live/", ["https://instagram.com/some.user/live"]),
    ("instagram.com/Some_User/live", ["https://instagram.com/some_user/live"]),
    ("https://www.instagram.com/p/Cabcdef123/", []),
    ("https://www.instagram.com/some.user/", []),
    // X
    ("https://x.com/i/broadcasts/1ZkKzabcdEFxv", ["https://x.com/i/broadcasts/1ZkKzabcdEFxv"]),
    ("https://twitter.com/i/broadcasts/1ZkKzabcdEFxv", ["https://x.com/i/broadcasts/1ZkKzabcdEFxv"]),
    ("https://x.com/someone/status/1700000000000000000", []),
    ("https://twitter.com/someone", []),
    // Rumble
    ("https://rumble.com/v4abcd-live-from-the-capitol.html", ["https://rumble.com/v4abcd-live-from-the-capitol.html"]),
    ("https://rumble.com/embed/v4abcd/", ["https://rumble.com/embed/v4abcd"]),
    ("https://rumble.com/c/SomeChannel/live", ["https://rumble.com/c/SomeChannel/live"]),
    ("https://rumble.com/c/SomeChannel", []),
    // Direct HLS
    ("https://cdn.example.net/live/stream1/index.m3u8", ["https://cdn.example.net/live/stream1/index.m3u8"]),
    ("http://203.0.113.7:8080/hls/cam.m3u8?token=abc", ["http://203.0.113.7:8080/hls/cam.m3u8?token=abc"]),
    ("playlist: <https://video.example.org/master.m3u8>", ["https://video.example.org/master.m3u8"]),
    ("https://video.example.org/MASTER.M3U8", ["https://video.example.org/MASTER.M3U8"]),
    // Several in one message, duplicates
    ("twitch.tv/aaa_bb and https://youtu.be/dQw4w9WgXcQ, also kick.com/ccc", ["https://twitch.tv/aaa_bb", "https://youtube.com/watch?v=dQw4w9WgXcQ", "https://kick.com/ccc"]),
    ("https://twitch.tv/same_one https://www.twitch.tv/Same_One/", ["https://twitch.tv/same_one"]),
    ("https://youtu.be/dQw4w9WgXcQ vs https://www.youtube.com/watch?v=dQw4w9WgXcQ", ["https://youtube.com/watch?v=dQw4w9WgXcQ"]),
    ("Minneapolis, MN — https://twitch.tv/mpls_live (via @someone)", ["https://twitch.tv/mpls_live"]),
    ("1) twitch.tv/first_one\n2) twitch.tv/second_one\n3) twitch.tv/third_one", ["https://twitch.tv/first_one", "https://twitch.tv/second_one", "https://twitch.tv/third_one"]),
    ("\"https://twitch.tv/quoted_one\"", ["https://twitch.tv/quoted_one"]),
    ("'https://twitch.tv/single_quoted'", ["https://twitch.tv/single_quoted"]),
    ("`twitch.tv/code_span`", ["https://twitch.tv/code_span"]),
    ("HTTPS://WWW.TWITCH.TV/SHOUTY", ["https://twitch.tv/shouty"]),
    ("stream here:https://twitch.tv/colon_glued", ["https://twitch.tv/colon_glued"]),
    ("https://twitch.tv/foo_bar, https://kick.com/baz_qux;", ["https://twitch.tv/foo_bar", "https://kick.com/baz_qux"]),
    ("going live soon… twitch.tv/ellipsis_after…", ["https://twitch.tv/ellipsis_after"]),
    // Not streams
    ("email me at someone@example.com", []),
    ("contact: press@twitch.tv", []),
    ("mailto:someone@example.com", []),
    ("https://i.imgur.com/abc123.png", []),
    ("https://pbs.twimg.com/media/abc.jpg:large", []),
    ("https://cdn.discordapp.com/attachments/1/2/image.webp", []),
    ("https://www.example.com/news/article", []),
    ("https://www.google.com/maps/place/Minneapolis", []),
    ("see www.nytimes.com for more", []),
    ("e.g. this or that", []),
    ("file.txt and notes.md", []),
    ("version 1.2.3 released", []),
    ("ftp://files.example.com/stream.m3u8", []),
    ("javascript:alert(1)//twitch.tv/x", []),
    ("just chatting, no links here", []),
    ("", []),
    ("twitch.tv", []),
    ("https://twitch.tv.evil.example/foo", []),
    ("https://nottwitch.tv/foo", []),
    ("https://user:pass@twitch.tv/foo", []),
    ("192.168.1.1", []),
    ("https://discord.gg/invitecode", []),
    ("https://open.spotify.com/track/abc", []),
    ("https://www.reddit.com/r/news/comments/abc", []),
    ("https://t.co/AbCdEf123", []),
]

@Suite struct LinkDetectorTests {
    let detector = LinkDetector()

    @Test(arguments: linkCases.indices)
    func findsExactlyTheStreamLinks(_ index: Int) {
        let (message, expected) = linkCases[index]
        #expect(detector.links(in: message).map(\.url) == expected, "message: \(message)")
    }

    @Test func thereAreAtLeastAHundredCases() {
        #expect(linkCases.count >= 100)
        #expect(linkCases.filter { $0.links.isEmpty }.count >= 40)
    }

    @Test func classifiesPlatformAndKind() throws {
        let links = detector.links(in: "twitch.tv/foo_bar https://youtu.be/dQw4w9WgXcQ https://tiktok.com/@a/live https://x.example/a.m3u8")
        #expect(links.map(\.platform) == [.twitch, .youtube, .tiktok, .hls])
        #expect(links.map(\.kind) == [.channel, .video, .live, .playlist])
    }

    @Test func configuredHostsCountEverywhere() {
        let configured = LinkDetector(extraHosts: ["owncast.example.org"])
        #expect(configured.links(in: "watch https://owncast.example.org/ now").map(\.url) == ["https://owncast.example.org"])
        #expect(configured.links(in: "watch https://video.owncast.example.org/embed").map(\.kind) == [.configured])
        #expect(detector.links(in: "watch https://owncast.example.org/").isEmpty)
    }

    @Test func longMessagesAreBounded() {
        let message = (0..<100).map { "twitch.tv/channel_\($0)" }.joined(separator: " ")
        #expect(detector.links(in: message).count == LinkDetector.maxLinks)
        let huge = String(repeating: "a", count: 100_000) + " twitch.tv/after_the_limit"
        #expect(detector.links(in: huge).isEmpty)
    }
}

@Suite struct LocationParserTests {
    let parser = LocationParser(places: LocationParser.parsePlaces("Kenosha, WI; Twin Cities, Minnesota"))

    @Test(arguments: [
        ("Live from Minneapolis, MN https://twitch.tv/x", "Minneapolis", "MN"),
        ("Portland, OR — protest downtown", "Portland", "OR"),
        ("Streaming in Los Angeles, California right now", "Los Angeles", "CA"),
        ("LIVE: Chicago, IL", "Chicago", "IL"),
        ("St. Paul, MN capitol steps", "St. Paul", "MN"),
        ("Downtown Seattle, WA", "Seattle", "WA"),
        ("New York, NY", "New York", "NY"),
        ("Washington, DC march", "Washington", "DC"),
        ("Winston-Salem, North Carolina", "Winston-Salem", "NC"),
        ("Coeur d'Alene, Idaho", "Coeur d'Alene", "ID"),
        ("here in kenosha tonight", "Kenosha", "WI"),
        ("the Twin Cities rally", "Twin Cities", "MN"),
    ])
    func readsCityAndState(_ text: String, _ city: String, _ state: String) {
        #expect(parser.location(in: text) == Location(city: city, state: state))
    }

    @Test func readsAStateAlone() {
        #expect(parser.location(in: "big crowd in Texas tonight") == Location(city: nil, state: "TX"))
        #expect(parser.location(in: "live from New Mexico") == Location(city: nil, state: "NM"))
    }

    /// Places as people write them in chat, and the everyday words that must not become places. The parser
    /// is scored on the whole table; the README reports these figures.
    static let chat: [(text: String, city: String?, state: String?)] = [
        // Places (23).
        ("Minneapolis MN https://m.twitch.tv/somebody", "Minneapolis", "MN"),
        ("in los angeles, california right now", "Los Angeles", "CA"),
        ("downtown Portland OR, big crowd", "Portland", "OR"),
        ("portland oregon bridge closed", "Portland", "OR"),
        ("live from chicago il", "Chicago", "IL"),
        ("LA protest https://twitch.tv/x", "Los Angeles", "CA"),
        ("philly march tonight", "Philadelphia", "PA"),
        ("Live from Denver", "Denver", "CO"),
        ("seattle, wa capitol hill", "Seattle", "WA"),
        ("NYC rally in times square", "New York", "NY"),
        ("kansas city missouri plaza", "Kansas City", "MO"),
        ("st louis mo stream", "St. Louis", "MO"),
        ("happening now in austin texas", "Austin", "TX"),
        ("Vegas strip live", "Las Vegas", "NV"),
        ("Atlanta, Georgia", "Atlanta", "GA"),
        ("live from texas", nil, "TX"),
        ("Big crowd in Ohio tonight", nil, "OH"),
        ("Kenosha WI courthouse", "Kenosha", "WI"),
        ("stream from the Bay Area", "San Francisco", "CA"),
        ("new orleans la second line", "New Orleans", "LA"),
        ("Baton Rouge, LA", "Baton Rouge", "LA"),
        ("ATL live now", "Atlanta", "GA"),
        ("salt lake city utah", "Salt Lake City", "UT"),
        // Not places (23).
        ("Live in 5", nil, nil),
        ("Go Big", nil, nil),
        ("OK then", nil, nil),
        ("going live in 10 min https://twitch.tv/x", nil, nil),
        ("Georgia is streaming tonight", nil, nil),
        ("or maybe not, ok?", nil, nil),
        ("me and my friends going in", nil, nil),
        ("I'm in! let's go https://youtu.be/x", nil, nil),
        ("Mobile stream is up", nil, nil),
        ("Reading chat now", nil, nil),
        ("check out this stream", nil, nil),
        ("Big protest tonight", nil, nil),
        ("ok ok ok", nil, nil),
        ("washington post article", nil, nil),
        ("Charlotte is live again", nil, nil),
        ("Phoenix Wright speedrun", nil, nil),
        ("new stream in the house", nil, nil),
        ("The Buffalo Bills game", nil, nil),
        ("la la land vibes", nil, nil),
        ("Indiana Jones rewatch", nil, nil),
        ("me, myself and I", nil, nil),
        ("Live at 8 PM EST", nil, nil),
        ("Houston, we have a problem", nil, nil),
    ]

    @Test func readsPlacesAsPeopleWriteThemWithoutInventingThem() {
        var found = 0, right = 0, expected = 0
        var misses: [String] = []
        for entry in Self.chat {
            let want = entry.city == nil && entry.state == nil ? nil : Location(city: entry.city, state: entry.state)
            let got = parser.location(in: entry.text)
            if want != nil { expected += 1 }
            if got != nil { found += 1 }
            if let got, got == want { right += 1 }
            if got != want { misses.append("\(entry.text) → \(got.map { "\($0.city ?? "-"), \($0.state ?? "-")" } ?? "nothing")") }
        }
        let precision = Double(right) / Double(max(1, found)), recall = Double(right) / Double(max(1, expected))
        print("places: \(Self.chat.count) messages, precision \(String(format: "%.3f", precision)), recall \(String(format: "%.3f", recall)); misses: \(misses)")
        #expect(Self.chat.count >= 40 && expected * 2 <= Self.chat.count, "at least 40 cases, half of them false friends")
        #expect(precision >= 0.95, "\(misses)")
        #expect(recall >= 0.95, "\(misses)")
    }

    @Test func ignoresWhatIsNotALocation() {
        #expect(parser.location(in: "or maybe not, ok?") == nil)
        #expect(parser.location(in: "going in, or out") == nil)
        #expect(parser.location(in: "washington post article") == nil)
        #expect(parser.location(in: "me, myself and I") == nil)
        #expect(parser.location(in: "https://twitch.tv/texas_streamer") == nil)
    }
}
