import Foundation
import HubCore
import Synchronization

/// Maps the engine's audio clock (seconds of PCM fed since the engine started) to media time (seconds since
/// 1970 in the recording): one entry per segment fed.
struct AudioTimeline: Sendable {
    private var entries: [(pcm: Double, media: Double)] = []
    /// Seconds of audio fed so far.
    private(set) var fed: Double = 0

    mutating func append(mediaStart: Double, seconds: Double) {
        entries.append((fed, mediaStart))
        fed += seconds
        // An hour of segments is plenty to place any line an engine still holds.
        if entries.count > 4_000 { entries.removeFirst(entries.count - 2_000) }
    }

    /// The media time of engine time `t` (clamped to what was fed).
    func media(_ t: Double) -> Double? {
        let t = min(max(0, t), fed)
        guard let entry = entries.last(where: { $0.pcm <= t }) ?? entries.first else { return nil }
        return entry.media + (t - entry.pcm)
    }
}

/// One running transcriber's in-memory state, shared by its worker's tasks and the supervisor.
final class TranscriberRuntime: Sendable {
    let id: String
    private let storage: Mutex<(transcriber: Transcriber, dirty: Bool)>
    let timeline = Mutex(AudioTimeline())

    init(_ transcriber: Transcriber) {
        self.id = transcriber.id
        self.storage = Mutex((transcriber, true))
    }

    var transcriber: Transcriber { storage.withLock { $0.transcriber } }

    /// Changes the state; answers whether `state` itself changed.
    @discardableResult
    func change(_ body: (inout Transcriber) -> Void) -> Bool {
        storage.withLock { stored in
            let before = stored.transcriber.state
            body(&stored.transcriber)
            stored.transcriber.updatedAt = Timestamp.now()
            stored.dirty = true
            return stored.transcriber.state != before
        }
    }

    /// The transcriber when it changed since the last call.
    func takeDirty() -> Transcriber? {
        storage.withLock { stored in
            guard stored.dirty else { return nil }
            stored.dirty = false
            return stored.transcriber
        }
    }

    func markDirty() { storage.withLock { $0.dirty = true } }
}

/// Spots configured wake words or phrases in final text.
struct WakeWordSpotter: Sendable {
    let phrases: [(text: String, words: [String])]

    init(_ configured: [String]) {
        phrases = configured.compactMap { phrase in
            let form = TranscriptLine.searchForm(phrase)
            return form.isEmpty ? nil : (phrase, form.split(separator: " ").map(String.init))
        }
    }

    struct Hit: Equatable {
        var phrase: String
        /// Engine time of the phrase's first word (nil when the engine gave no word times).
        var start: Double?
        var confidence: Double
    }

    func spot(_ line: EngineLine) -> [Hit] {
        guard !phrases.isEmpty else { return [] }
        var hits: [Hit] = []
        if let words = line.words, !words.isEmpty {
            let forms = words.map { TranscriptLine.searchForm($0.word) }
            for phrase in phrases where phrase.words.count <= forms.count {
                var index = 0
                while index + phrase.words.count <= forms.count {
                    if Array(forms[index..<(index + phrase.words.count)]) == phrase.words {
                        let matched = words[index..<(index + phrase.words.count)]
                        hits.append(Hit(phrase: phrase.text, start: matched.first?.start ?? line.start,
                                        confidence: matched.compactMap(\.confidence).min() ?? line.confidence ?? 1))
                        index += phrase.words.count
                    } else {
                        index += 1
                    }
                }
            }
            return hits
        }
        let text = " " + TranscriptLine.searchForm(line.text) + " "
        for phrase in phrases {
            var range = text.startIndex..<text.endIndex
            while let found = text.range(of: " " + phrase.words.joined(separator: " ") + " ", range: range) {
                hits.append(Hit(phrase: phrase.text, start: line.start, confidence: line.confidence ?? 1))
                range = text.index(before: found.upperBound)..<text.endIndex
            }
        }
        return hits
    }
}
