import Foundation
import HubCore
import Logging
import Metrics
import Overlays
import Recorder
import Subprocess
import Synchronization
import SystemPackage

/// What a transcriber's worker needs from the rest of the server.
struct TranscriptionContext: Sendable {
    let store: TranscriptionStore
    let recorder: RecorderModule
    let overlays: OverlaysModule
    let bus: EventBus
    let engines: SpeechEngines
    let ffmpegPath: String
    let logger: Logger
    let metrics: TranscriptionMetrics
}

/// The server's transcription metrics (no ids in labels: a recording id is the capability to play it).
struct TranscriptionMetrics: Sendable {
    let utterances: Counter
    let interims: Counter
    let wakeWords: Counter
    let audioSeconds: FloatingPointCounter
    let engineSeconds: FloatingPointCounter
    let engineRestarts: Counter
    let decodeErrors: Counter
    let badLines: Counter
    /// From the end of an utterance in the media to its final caption being published.
    let delay: Metrics.Timer

    init(factory: any MetricsFactory) {
        utterances = Counter(label: "streamhub_transcription_utterances_total", factory: factory)
        interims = Counter(label: "streamhub_transcription_interim_results_total", factory: factory)
        wakeWords = Counter(label: "streamhub_transcription_wake_words_total", factory: factory)
        audioSeconds = FloatingPointCounter(label: "streamhub_transcription_audio_seconds_total", factory: factory)
        engineSeconds = FloatingPointCounter(label: "streamhub_transcription_decode_seconds_total", factory: factory)
        engineRestarts = Counter(label: "streamhub_transcription_engine_restarts_total", factory: factory)
        decodeErrors = Counter(label: "streamhub_transcription_decode_errors_total", factory: factory)
        badLines = Counter(label: "streamhub_transcription_bad_engine_lines_total", factory: factory)
        delay = Metrics.Timer(label: "streamhub_transcription_delay_seconds", preferredDisplayUnit: .seconds, factory: factory)
    }
}

/// Runs one transcriber until it finishes or its task is cancelled: decodes each new segment of its recording
/// to 16 kHz mono PCM with ffmpeg, feeds it to the engine process, and turns the engine's lines into
/// `transcription` and `wake_word` events, community captions and stored transcript lines. An engine that
/// exits or writes garbage, or audio that cannot be decoded, puts the transcriber in `error` and is retried
/// with backoff; nothing else is affected.
struct TranscriberWorker: Sendable {
    let runtime: TranscriberRuntime
    let context: TranscriptionContext
    let instanceID: String

    /// Consecutive unparsable engine lines after which the engine is restarted.
    static let badLineLimit = 20
    /// Seconds an engine has to finish after its input ended.
    static let flushTimeout = 30.0
    /// Seconds of digital silence after which the transcriber says so.
    static let silenceNotice = 30.0

    enum Outcome: Sendable { case finished, gone, exited(String) }

    func run() async {
        var backoff = 1.0
        let logger = context.logger
        while !Task.isCancelled {
            let t = runtime.transcriber
            let command: [String]
            switch await context.engines.command(t.engine, language: t.language) {
            case .failure(let error):
                fail(error.message)
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(60, backoff * 2)
                continue
            case .success(let found): command = found
            }
            // Wait until there is audio to transcribe (or the recording is over).
            switch await waitForAudio() {
            case .finished: finish(); return
            case .gone: fail("its recording was deleted"); return
            case .exited, nil: break
            }
            if Task.isCancelled { return }
            let started = Timestamp.now()
            let outcome = await session(command)
            switch outcome {
            case .finished:
                finish()
                return
            case .gone:
                fail("its recording was deleted")
                return
            case .exited(let why):
                if Task.isCancelled { return }
                if Timestamp.now() - started > 60 { backoff = 1 }
                runtime.change { $0.engineRestarts += 1 }
                context.metrics.engineRestarts.increment()
                fail(why)
                logger.warning("speech engine ended; restarting", metadata: ["transcriber_id": "\(runtime.id)", "error": "\(why)", "backoff_s": "\(backoff)"])
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(60, backoff * 2)
            }
        }
    }

    private func fail(_ message: String) {
        runtime.change { $0.state = .error; $0.error = String(message.prefix(500)) }
    }

    /// Done: the recording is over and every segment was transcribed. An error it ended in stays said.
    private func finish() {
        runtime.change { t in
            let aboutTheAudio = t.error.map { $0.hasPrefix("no sound") || $0.hasPrefix("the source has no audio") } ?? false
            if t.state != .error && !aboutTheAudio { t.error = nil }
            t.state = .finished
            t.stoppedAt = Timestamp.now()
        }
    }

    /// Waits for a segment after the transcriber's position; `.finished` when the recording is over and none
    /// is left, `.gone` when it was deleted, nil when there is one.
    private func waitForAudio() async -> Outcome? {
        var waitingSince: Double?
        while !Task.isCancelled {
            do {
                if try await !context.recorder.segments(of: runtime.transcriber.recordingID, after: runtime.transcriber.position, limit: 1).isEmpty {
                    return nil
                }
                guard let status = try await context.recorder.recordingStatus(runtime.transcriber.recordingID) else { return .gone }
                if status.state == "stopped" || status.state == "failed" { return .finished }
                let now = Timestamp.now()
                if waitingSince == nil { waitingSince = now }
                let waited = now - (waitingSince ?? now)
                // Between the segments of a live recording a running transcriber stays running; it waits when the
                // recording is not recording or has brought nothing for 10 s.
                let between = status.state == "recording" && waited < 10 && runtime.transcriber.state == .running
                if !between && (runtime.transcriber.state != .error || waited > 10) {
                    runtime.change { t in
                        t.state = .waiting
                        t.error = status.state == "recording" ? nil : "the recording is \(status.state)" + (status.error.map { ": \($0)" } ?? "")
                    }
                }
            } catch {
                runtime.change { $0.state = .waiting; $0.error = "could not read the recording: \(error)" }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        return nil
    }

    /// One run of the engine process.
    private func session(_ command: [String]) async -> Outcome {
        let stderr = LineTail()
        let feedDone = Flag()
        runtime.timeline.withLock { $0 = AudioTimeline() }
        runtime.change { t in t.state = .starting; t.error = nil }
        var environment: [Environment.Key: String?] = ["STREAMHUB_STT_LANGUAGE": runtime.transcriber.language]
        environment["STREAMHUB_STT_SAMPLE_RATE"] = "16000"
        do {
            let result = try await Subprocess.run(
                .path(FilePath(ChildProcess.locate(command[0]) ?? command[0])), arguments: Arguments(Array(command.dropFirst())),
                environment: .inherit.updating(environment), platformOptions: Self.platformOptions, input: .inputWriter, output: .sequence, error: .sequence
            ) { execution -> Outcome in
                await withTaskGroup(of: Outcome?.self) { group in
                    group.addTask {
                        var badInARow = 0
                        do {
                            for try await line in execution.standardOutput.strings() {
                                let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                                guard !trimmed.isEmpty else { continue }
                                if let parsed = EngineLine.parse(Substring(trimmed)) {
                                    badInARow = 0
                                    await handle(parsed)
                                } else {
                                    badInARow += 1
                                    context.metrics.badLines.increment()
                                    let shown = String(trimmed.prefix(80))
                                    runtime.change { t in
                                        t.badLines += 1
                                        t.error = "the engine wrote a line that is not {\"text\",\"is_final\"} JSON: \(shown)"
                                    }
                                    if badInARow >= Self.badLineLimit {
                                        try? execution.send(signal: .terminate)
                                        return .exited("the engine wrote \(badInARow) lines in a row that are not {\"text\",\"is_final\"} JSON, e.g. \(shown)")
                                    }
                                }
                            }
                        } catch {}
                        if feedDone.isSet { return .finished }
                        return .exited("the engine exited" + (stderr.text.isEmpty ? "" : ": " + stderr.text))
                    }
                    group.addTask {
                        do { for try await line in execution.standardError.strings() { stderr.append(line) } } catch {}
                        return nil
                    }
                    group.addTask {
                        let outcome = await feed(execution.standardInputWriter)
                        if case .finished = outcome {
                            feedDone.set()
                            try? await execution.standardInputWriter.finish()
                            // The engine flushes its last utterance and exits; one that does not is stopped.
                            try? await Task.sleep(for: .seconds(Self.flushTimeout))
                            try? execution.send(signal: .terminate)
                            return nil
                        }
                        try? execution.send(signal: .terminate)
                        return outcome
                    }
                    defer { group.cancelAll() }
                    while let next = await group.next() {
                        if let next {
                            if case .finished = next {} else { try? execution.send(signal: .terminate) }
                            return next
                        }
                    }
                    return .exited("the engine exited")
                }
            }
            return result.closureResult
        } catch {
            return .exited("could not start the engine (\(command[0])): \(error)")
        }
    }

    /// Feeds segments to the engine until the recording is over (`.finished`), deleted, or the engine stops
    /// reading (`.exited`).
    private func feed(_ writer: StandardInputWriter) async -> Outcome {
        var failuresInARow = 0
        var noAudioInARow = 0
        var silentFor = 0.0
        while !Task.isCancelled {
            let t = runtime.transcriber
            let segments: [RecorderModule.SegmentSource]
            do {
                segments = try await context.recorder.segments(of: t.recordingID, after: t.position, limit: 8)
            } catch {
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            if segments.isEmpty {
                switch await waitForAudio() {
                case .finished: return .finished
                case .gone: return .gone
                default: continue
                }
            }
            for segment in segments {
                if Task.isCancelled { return .exited("stopped") }
                let started = Timestamp.now()
                var decoded = await decode(segment)
                if case .noAudio = decoded {
                    // A segment without audio (a source without any, or the video tail of a stream) is silence here;
                    // three in a row are reported.
                    noAudioInARow += 1
                    decoded = .success([UInt8](repeating: 0, count: Int(segment.duration * 16_000) * 2))
                } else {
                    noAudioInARow = 0
                }
                switch decoded {
                case .success(let pcm):
                    failuresInARow = 0
                    let seconds = Double(pcm.count) / 32_000
                    context.metrics.engineSeconds.increment(by: Timestamp.now() - started)
                    runtime.timeline.withLock { $0.append(mediaStart: segment.startsAt, seconds: seconds) }
                    do {
                        if !pcm.isEmpty { _ = try await writer.write(pcm) }
                    } catch {
                        return .exited("the engine stopped reading its input")
                    }
                    silentFor = Self.isSilent(pcm) ? silentFor + seconds : 0
                    context.metrics.audioSeconds.increment(by: seconds)
                    let noAudio = noAudioInARow >= 3
                    runtime.change { t in
                        t.position = segment.sequence
                        t.audioSeconds += seconds
                        if noAudio {
                            t.state = .error
                            t.error = "the source has no audio track (the last \(noAudioInARow) segments had none)"
                        } else {
                            if t.state != .running { t.state = .running }
                            if silentFor >= Self.silenceNotice {
                                t.error = "no sound: the last \(Int(silentFor)) s of audio were silent"
                            } else if let error = t.error, ["no sound", "could not decode", "the source has no audio"].contains(where: error.hasPrefix) {
                                t.error = nil
                            }
                        }
                    }
                case .noAudio:
                    break
                case .failure(let message):
                    failuresInARow += 1
                    context.metrics.decodeErrors.increment()
                    runtime.change { t in
                        t.position = segment.sequence
                        t.decodeErrors += 1
                        t.error = message
                        if failuresInARow >= 3 { t.state = .error }
                    }
                    if failuresInARow >= 3 {
                        // Audio that does not decode: skip ahead with backoff rather than burn the CPU.
                        try? await Task.sleep(for: .seconds(min(30, Double(failuresInARow - 2) * 2)))
                    }
                }
            }
        }
        return .exited("stopped")
    }

    enum Decoded { case success([UInt8]), noAudio, failure(String) }

    /// A segment's audio as 16 kHz mono s16le PCM.
    private func decode(_ segment: RecorderModule.SegmentSource) async -> Decoded {
        let input = segment.inputs.count == 1 ? Self.ffmpegInput(segment.inputs[0])
            : "concat:" + segment.inputs.joined(separator: "|")
        let arguments = ["-hide_banner", "-nostdin", "-v", "error", "-i", input, "-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "pipe:1"]
        do {
            let result = try await ChildProcess.run(context.ffmpegPath, arguments, timeout: .seconds(max(30, segment.duration * 4)), maxOutput: 128 << 20)
            if result.timedOut { return .failure("could not decode the audio of segment \(segment.sequence): ffmpeg took too long") }
            let message = String(decoding: result.stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if result.status != 0 {
                if message.contains("does not contain any stream") || message.contains("matches no streams") { return .noAudio }
                return .failure("could not decode the audio of segment \(segment.sequence): " + String(message.suffix(300)))
            }
            return .success([UInt8](result.stdout))
        } catch {
            return .failure("could not decode the audio: \(error)")
        }
    }

    static var platformOptions: PlatformOptions {
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
        return options
    }

    static func ffmpegInput(_ input: String) -> String { input.hasPrefix("/") ? "file:" + input : input }

    /// Whether 16-bit PCM never rises above -60 dBFS.
    static func isSilent(_ pcm: [UInt8]) -> Bool {
        var index = 0
        while index + 1 < pcm.count {
            let sample = Int16(bitPattern: UInt16(pcm[index]) | UInt16(pcm[index + 1]) << 8)
            if abs(Int(sample)) > 32 { return false }
            index += 2
        }
        return true
    }

    /// One engine line: an interim or final result.
    private func handle(_ line: EngineLine) async {
        let text = line.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return }
        let t = runtime.transcriber
        let session = t.sessionID ?? t.id
        // Media times of the line (an engine that gives none is placed at the audio fed so far).
        let (start, end) = runtime.timeline.withLock { timeline in
            (timeline.media(line.start ?? line.end ?? timeline.fed), timeline.media(line.end ?? timeline.fed))
        }
        let event = TranscriptionEvent(text: text, isFinal: line.isFinal, sessionID: session, communityID: t.communityID, transcriberID: t.id,
                                       recordingID: t.recordingID, mediaTime: start, mediaEnd: line.isFinal ? end : nil)
        try? context.bus.publish(event)
        if let community = t.communityID {
            do {
                try await context.overlays.showCaption(Caption(communityID: community, text: text, isFinal: line.isFinal, detectedLang: t.language,
                                                               confidence: line.confidence, platform: "streamhub-stt", timestamp: Timestamp.now()))
            } catch {
                runtime.change { $0.error = "could not show the caption on community \(community): \(error)" }
            }
        }
        guard line.isFinal else {
            context.metrics.interims.increment()
            return
        }
        let now = Timestamp.now()
        context.metrics.utterances.increment()
        if let end { context.metrics.delay.recordNanoseconds(Int64(max(0, now - end) * 1e9)) }
        runtime.change { t in
            t.utterances += 1
            t.lastTextAt = now
        }
        if let start {
            let stored = TranscriptLine(transcriberID: t.id, recordingID: t.recordingID, sessionID: session, startsAt: start,
                                        endsAt: max(start, end ?? start), text: text, confidence: line.confidence)
            do {
                try await context.store.addLine(stored)
            } catch {
                context.logger.warning("could not store a transcript line", metadata: ["transcriber_id": "\(t.id)", "error": "\(error)"])
            }
        }
        for hit in WakeWordSpotter(t.wakeWords).spot(line) {
            let timestamp = runtime.timeline.withLock { $0.media(hit.start ?? line.start ?? 0) } ?? now
            try? context.bus.publish(WakeWordEvent(word: hit.phrase, confidence: hit.confidence, timestamp: timestamp, sessionID: session,
                                                   communityID: t.communityID, transcriberID: t.id, recordingID: t.recordingID))
            context.metrics.wakeWords.increment()
            runtime.change { $0.wakeWordsHeard += 1 }
        }
    }
}

/// The last few lines a child wrote on stderr, for the error it ends with.
final class LineTail: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return }
        lines.withLock { lines in
            lines.append(String(trimmed.prefix(300)))
            if lines.count > 3 { lines.removeFirst() }
        }
    }

    var text: String { lines.withLock { $0.joined(separator: " / ") } }
}

/// A flag set once.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
