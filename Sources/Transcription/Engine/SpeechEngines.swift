import Foundation
import HubCore
import Synchronization

/// One line an engine writes: `{"text","is_final"}`, optionally with the times (seconds of audio since the
/// engine started) and the words.
struct EngineLine: Decodable, Sendable, Equatable {
    struct Word: Decodable, Sendable, Equatable {
        var word: String
        var start: Double?
        var end: Double?
        var confidence: Double?
    }

    var text: String
    var isFinal: Bool
    var start: Double?
    var end: Double?
    var confidence: Double?
    var words: [Word]?

    enum CodingKeys: String, CodingKey { case text, isFinal = "is_final", start, end, confidence, words }

    /// Parses one output line; `nil` for anything that is not such an object.
    static func parse(_ line: Substring) -> EngineLine? {
        guard line.utf8.count <= 64 << 10, let parsed = try? JSONDecoder().decode(EngineLine.self, from: Data(line.utf8)) else { return nil }
        guard parsed.start.map({ $0.isFinite && $0 >= 0 }) ?? true, parsed.end.map({ $0.isFinite && $0 >= 0 }) ?? true else { return nil }
        return parsed
    }
}

/// The engines this instance can run: the built-in PocketSphinx (a helper script run by Python, when the
/// `pocketsphinx` package is installed) and the command engines the operator configured.
public struct SpeechEngines: Sendable {
    public static let builtIn = "pocketsphinx"
    public static let installHint = "pip install pocketsphinx (the wheel carries its US English model)"
    /// Languages the built-in engine has a model for.
    static let builtInLanguages: Set<String> = ["en", "en-us"]

    let settings: HubConfiguration.TranscriptionSettings
    let scriptPath: String
    private let probe = ProbeCache()

    init(settings: HubConfiguration.TranscriptionSettings, dataDirectory: String) {
        self.settings = settings
        self.scriptPath = (dataDirectory as NSString).appendingPathComponent("engines/pocketsphinx_engine.py")
    }

    var names: [String] { [Self.builtIn] + settings.commands.keys.sorted() }

    /// The program and arguments of an engine, or why it cannot run.
    func command(_ name: String, language: String) async -> Result<[String], HubError> {
        if name == Self.builtIn {
            if let reason = await builtInUnavailable() { return .failure(Self.unavailable(reason)) }
            guard Self.builtInLanguages.contains(language.lowercased()) else {
                return .failure(HubError(.unprocessableContent, code: "unsupported_language",
                                         message: "the built-in engine has a model for en-US only, not '\(language)'; use a command engine for other languages"))
            }
            return .success([settings.pythonPath, "-u", scriptPath])
        }
        guard let command = settings.commands[name] else {
            return .failure(HubError(.unprocessableContent, code: "unknown_engine",
                                     message: "no engine named '\(name.prefix(40))'; this instance has: \(names.joined(separator: ", "))"))
        }
        guard ChildProcess.locate(command[0]) != nil else {
            return .failure(Self.unavailable("the program of engine '\(name)' (\(command[0])) is not installed"))
        }
        return .success(command)
    }

    static func unavailable(_ reason: String) -> HubError {
        HubError(.serviceUnavailable, code: "engine_unavailable", message: reason)
    }

    /// Why the built-in engine cannot run here (`nil`: it can). Checked at most once a minute.
    func builtInUnavailable() async -> String? {
        let now = Timestamp.now()
        if let known = probe.value.withLock({ $0 }), now - known.checked < 60 { return known.reason }
        var reason: String?
        if ChildProcess.locate(settings.pythonPath) == nil {
            reason = "the built-in engine needs Python 3 (\(settings.pythonPath) is not installed) and \(Self.installHint)"
        } else if let result = try? await ChildProcess.run(settings.pythonPath, ["-c", "import pocketsphinx"], timeout: .seconds(20)), result.status == 0 {
            reason = nil
        } else {
            reason = "the built-in engine is not installed: \(Self.installHint)"
        }
        if reason == nil { reason = installScript() }
        probe.value.withLock { $0 = (now, reason) }
        return reason
    }

    /// Writes the helper script into the data directory (when it differs); answers a reason on failure.
    private func installScript() -> String? {
        let data = Data(Self.pocketsphinxScript.utf8)
        if FileManager.default.contents(atPath: scriptPath) == data { return nil }
        do {
            try FileManager.default.createDirectory(atPath: (scriptPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: scriptPath), options: .atomic)
            return nil
        } catch {
            return "could not write the engine helper to \(scriptPath): \(error)"
        }
    }

    /// The engines and whether each can run, for `GET /api/v1/transcribers/engines` and `/health`.
    func describe() async -> [(name: String, kind: String, available: Bool, detail: String?)] {
        var answers: [(String, String, Bool, String?)] = []
        let reason = await builtInUnavailable()
        answers.append((Self.builtIn, "built-in", reason == nil, reason ?? "PocketSphinx, US English"))
        for name in settings.commands.keys.sorted() {
            let program = settings.commands[name]![0]
            let found = ChildProcess.locate(program) != nil
            answers.append((name, "command", found, found ? program : "\(program) is not installed"))
        }
        return answers
    }

    /// The built-in engine: PocketSphinx reads 16 kHz mono s16le PCM on stdin, its endpointer cuts utterances
    /// at pauses, and each utterance is written as JSON lines — interim hypotheses about twice a second of
    /// speech, then the final text with its words and times (seconds of audio since the start).
    static let pocketsphinxScript = #"""
    # StreamHub's built-in speech engine (written by the server; edits are overwritten).
    # Reads 16 kHz mono s16le PCM on stdin, writes JSON lines {"text","is_final",...} on stdout.
    import json, sys
    from pocketsphinx import Decoder, Endpointer

    def main():
        endpointer = Endpointer()
        decoder = Decoder(samprate=int(endpointer.sample_rate))
        logmath = decoder.get_logmath()
        frame_bytes = int(endpointer.frame_bytes)
        frames_per_second = int(endpointer.sample_rate) // (frame_bytes // 2)
        out = sys.stdout
        stdin = sys.stdin.buffer
        last, frames = None, 0

        def emit(obj):
            out.write(json.dumps(obj) + "\n")
            out.flush()

        while True:
            frame = stdin.read(frame_bytes)
            ended = len(frame) < frame_bytes
            was_speaking = endpointer.in_speech
            speech = endpointer.end_stream(frame) if ended else endpointer.process(frame)
            if speech is not None:
                if not was_speaking:
                    decoder.start_utt()
                    last, frames = None, 0
                decoder.process_raw(speech)
                frames += 1
                if not endpointer.in_speech:
                    decoder.end_utt()
                    hyp = decoder.hyp()
                    start = endpointer.speech_start
                    words = []
                    for seg in decoder.seg():
                        if seg.word.startswith("<") or seg.word.startswith("["):
                            continue
                        words.append({"word": seg.word.split("(")[0], "start": round(start + seg.start_frame / 100, 2),
                                      "end": round(start + seg.end_frame / 100, 2), "confidence": round(logmath.exp(seg.prob), 3)})
                    text = hyp.hypstr if hyp else ""
                    if text:
                        emit({"text": text, "is_final": True, "start": round(start, 2), "end": round(endpointer.speech_end, 2), "words": words})
                elif frames % max(1, frames_per_second // 2) == 0:
                    hyp = decoder.hyp()
                    if hyp and hyp.hypstr and hyp.hypstr != last:
                        last = hyp.hypstr
                        emit({"text": hyp.hypstr, "is_final": False, "start": round(endpointer.speech_start, 2)})
            if ended:
                break

    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    """#
}

/// The built-in engine's last availability check.
final class ProbeCache: Sendable {
    let value = Mutex<(checked: Double, reason: String?)?>(nil)
}
