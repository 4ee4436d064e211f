import Foundation
import HubCore
import Testing
@testable import Transcription

@Suite struct EngineLineTests {
    @Test func parsesTheProtocolAndRefusesAnythingElse() {
        #expect(EngineLine.parse(#"{"text":"hello there","is_final":true}"#) == EngineLine(text: "hello there", isFinal: true))
        let full = EngineLine.parse(#"{"text":"hi","is_final":false,"start":1.5,"end":2,"words":[{"word":"hi","start":1.5,"end":2,"confidence":0.9}],"extra":1}"#)
        #expect(full?.start == 1.5 && full?.words?.first?.confidence == 0.9)
        for bad in ["not json", "{}", #"{"text":5,"is_final":true}"#, #"{"text":"a"}"#, #"["text"]"#, #"{"text":"a","is_final":true,"start":-1}"#,
                    String(repeating: "x", count: 70_000)] {
            #expect(EngineLine.parse(Substring(bad)) == nil, "\(bad.prefix(40))")
        }
    }
}

@Suite struct WakeWordSpotterTests {
    @Test func findsPhrasesByWordsWithTheirTimes() {
        let spotter = WakeWordSpotter(["Hey Hub", "computer", "  "])
        let line = EngineLine(text: "well hey hub computer and computer", isFinal: true, words: [
            .init(word: "well", start: 0, end: 0.2), .init(word: "hey", start: 0.3, end: 0.5, confidence: 0.8),
            .init(word: "hub", start: 0.5, end: 0.9, confidence: 0.6), .init(word: "computer", start: 1.0, end: 1.5),
            .init(word: "and", start: 1.6, end: 1.7), .init(word: "COMPUTER", start: 2.0, end: 2.5, confidence: 0.7),
        ])
        let hits = spotter.spot(line)
        #expect(hits == [
            .init(phrase: "Hey Hub", start: 0.3, confidence: 0.6),
            .init(phrase: "computer", start: 1.0, confidence: 1),
            .init(phrase: "computer", start: 2.0, confidence: 0.7),
        ])
    }

    @Test func withoutWordsItMatchesWholeWordsInTheText() {
        let spotter = WakeWordSpotter(["hub"])
        #expect(spotter.spot(EngineLine(text: "the hub, the hubcap", isFinal: true, start: 4)) == [.init(phrase: "hub", start: 4, confidence: 1)])
        #expect(spotter.spot(EngineLine(text: "hubcap", isFinal: true)).isEmpty)
        #expect(WakeWordSpotter([]).spot(EngineLine(text: "hub", isFinal: true)).isEmpty)
    }
}

@Suite struct AudioTimelineTests {
    @Test func mapsEngineTimeToMediaTimeAcrossSegmentsAndGaps() {
        var timeline = AudioTimeline()
        #expect(timeline.media(0) == nil)
        timeline.append(mediaStart: 1000, seconds: 2)
        timeline.append(mediaStart: 1002, seconds: 2)
        // A gap in the source: the next segment starts 10 s later in media time.
        timeline.append(mediaStart: 1014, seconds: 2)
        #expect(timeline.fed == 6)
        #expect(timeline.media(0) == 1000)
        #expect(timeline.media(1.5) == 1001.5)
        #expect(timeline.media(3) == 1003)
        #expect(timeline.media(4.5) == 1014.5)
        #expect(timeline.media(99) == 1016, "clamped to what was fed")
    }
}

@Suite struct TranscriptFormatTests {
    @Test func searchFormFoldsCaseAndPunctuation() {
        #expect(TranscriptLine.searchForm("  Warehouse FIRE, near—the river!  ") == "warehouse fire near the river")
        #expect(TranscriptLine.searchForm("it's 10% off") == "it's 10 off")
        #expect(TranscriptLine.searchForm("!!") == "")
    }

    @Test func webVTTHasCuesFromTheOriginWithEscapedText() {
        let lines = [
            TranscriptLine(transcriberID: "t", recordingID: "r", sessionID: "s", startsAt: 1_000.5, endsAt: 1_003.25, text: "a <b> & c", confidence: nil),
            TranscriptLine(transcriberID: "t", recordingID: "r", sessionID: "s", startsAt: 4_661, endsAt: 4_661, text: "line\nbreak", confidence: nil),
        ]
        let vtt = TranscribersController.webVTT(lines, origin: 1_000)
        #expect(vtt == "WEBVTT\n\n1\n00:00:00.500 --> 00:00:03.250\na &lt;b&gt; &amp; c\n\n2\n01:01:01.000 --> 01:01:01.500\nline break\n\n")
    }

    @Test func momentsAreUnixSecondsISOOrCompact() throws {
        #expect(try TranscribersController.moment("1700000000.5", name: "from") == 1_700_000_000.5)
        #expect(try TranscribersController.moment("2023-11-14T22:13:20Z", name: "from") == 1_700_000_000)
        #expect(try TranscribersController.moment("20231114221320", name: "from") == 1_700_000_000)
        #expect(try TranscribersController.moment(nil, name: "from") == nil)
        #expect(throws: HubError.self) { try TranscribersController.moment("soon", name: "from") }
        #expect(throws: HubError.self) { try TranscribersController.moment("-5", name: "from") }
    }
}

@Suite struct SpeechEngineTests {
    @Test func commandEnginesAreTheOperatorsOnly() async {
        var settings = HubConfiguration.TranscriptionSettings()
        settings.commands = ["cat": ["cat"], "gone": ["/nonexistent/engine"]]
        settings.pythonPath = "/nonexistent/python3"
        let engines = SpeechEngines(settings: settings, dataDirectory: NSTemporaryDirectory())
        #expect(engines.names == ["pocketsphinx", "cat", "gone"])
        guard case .success(let command) = await engines.command("cat", language: "fr-FR") else { Issue.record("cat should run"); return }
        #expect(command == ["cat"])
        for (name, code) in [("gone", "engine_unavailable"), ("bash -c x", "unknown_engine"), ("pocketsphinx", "engine_unavailable")] {
            guard case .failure(let error) = await engines.command(name, language: "en-US") else { Issue.record("\(name) should fail"); continue }
            #expect(error.code == code, "\(name)")
        }
        guard case .failure(let missing) = await engines.command("pocketsphinx", language: "en-US") else { return }
        #expect(missing.message.contains("pip install pocketsphinx"))
        let described = await engines.describe()
        #expect(described.map(\.available) == [false, true, false])
    }
}
