import Foundation
import HubCore
import Logging
import Subprocess
import Synchronization
import SystemPackage

/// One tile of a wall layer (or one source layer's picture, or the program's audio) as an endless raw stream, paced in real time, that the program's ffmpeg
/// reads from a named pipe (`-f rawvideo -i tile-….fifo`).
///
/// What the tile shows can change while the program's ffmpeg runs: a decoder (its own small ffmpeg) turns
/// the tile's current source into frames of the tile's size, and a writer thread sends the newest one down
/// the pipe at the program's frame rate — repeating a frame when the decoder is slow, skipping when it is
/// fast. Swapping the source starts a new decoder; the pipe never stops, so the program's graph, its
/// timestamps and its outputs (HLS, RTMP) go on untouched. A tile with no source, or whose source fails or
/// stalls for `staleAfter`, shows a "No signal" slate until frames come again.
final class TileFeed: Sendable {
    let fifo: String
    let width: Int
    let height: Int
    let fps: Int
    let ffmpeg: String
    let logger: Logger
    /// An audio feed (48 kHz stereo s16le, written in 20 ms chunks, silence when the source has none) rather
    /// than a video one.
    let audio: Bool
    /// A crop filter applied before scaling (a source layer's crop), or nil.
    let crop: String?
    /// Bytes per unit written: a yuv420p frame, or 20 ms of audio.
    var frameSize: Int { audio ? Self.audioChunk : width * height * 3 / 2 }
    static let audioChunk = 48_000 / 50 * 4
    /// At most this much decoded audio waits (1 s); older audio is dropped (the source ran ahead).
    static let audioBacklog = 48_000 * 4
    /// Seconds without a new frame after which the tile shows the slate.
    static let staleAfter = 3.0

    private struct Shared {
        var frame: [UInt8]?
        var frameAt = 0.0
        /// Decoded audio not yet written.
        var audio: [UInt8] = []
        var source: String?
        var generation = 0
        var stopped = false
        var framesWritten = 0
        var slateFrames = 0
    }

    private let shared = Mutex(Shared())
    private let slate: [UInt8]
    /// Wakes the decoder loop when the source changes or the feed stops.
    private let changes: AsyncStream<Void>.Continuation
    private let changeStream: AsyncStream<Void>

    init(fifo: String, width: Int, height: Int, fps: Int, ffmpeg: String, slate: [UInt8], logger: Logger, audio: Bool = false, crop: String? = nil) {
        self.audio = audio
        self.crop = crop
        self.fifo = fifo
        self.width = width
        self.height = height
        self.fps = fps
        self.ffmpeg = ffmpeg
        self.slate = slate
        self.logger = logger
        (changeStream, changes) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Points the tile at another source (an HLS URL StreamHub serves itself), or at nothing.
    func show(_ source: String?) {
        let changed = shared.withLock { shared -> Bool in
            guard shared.source != source else { return false }
            shared.source = source
            shared.generation += 1
            shared.frame = nil
            shared.audio = []
            return true
        }
        if changed { changes.yield() }
    }

    var source: String? { shared.withLock { $0.source } }
    /// Frames sent down the pipe, and how many of them were the slate.
    var counts: (written: Int, slate: Int) { shared.withLock { ($0.framesWritten, $0.slateFrames) } }

    func stop() {
        shared.withLock { $0.stopped = true; $0.generation += 1 }
        changes.yield()
        changes.finish()
        // A writer waiting for a reader to open the pipe is released by opening it ourselves.
        let fd = open(fifo, O_RDONLY | O_NONBLOCK)
        if fd >= 0 { DispatchQueue.global().asyncAfter(deadline: .now() + 1) { close(fd) } }
    }

    /// Creates the pipe, starts the writer thread, and decodes the current source until stopped.
    func run() async {
        unlink(fifo)
        guard mkfifo(fifo, 0o600) == 0 else {
            logger.error("could not create a tile's pipe", metadata: ["path": "\(fifo)", "errno": "\(errno)"])
            return
        }
        signal(SIGPIPE, SIG_IGN)
        let writer = Thread { [self] in self.writeLoop() }
        writer.name = "tile-feed"
        writer.start()
        var changes = changeStream.makeAsyncIterator()
        while !shared.withLock({ $0.stopped }) {
            let (source, generation) = shared.withLock { ($0.source, $0.generation) }
            if let source {
                await decode(source, generation: generation)
                // The decoder ended on its own (the source ended or failed): try again shortly, unless the
                // source changed meanwhile.
                if shared.withLock({ $0.generation == generation && !$0.stopped }) {
                    try? await Task.sleep(for: .seconds(1))
                    continue
                }
            } else {
                _ = await changes.next()
            }
        }
        unlink(fifo)
    }

    /// Runs one decoder for `source` until it ends or the source changes.
    private func decode(_ source: String, generation: Int) async {
        let filter = (crop.map { $0 + "," } ?? "") + "scale=\(width):\(height):force_original_aspect_ratio=decrease,pad=\(width):\(height):(ow-iw)/2:(oh-ih)/2,fps=\(fps),format=yuv420p"
        let output = audio ? ["-vn", "-ac", "2", "-ar", "48000", "-f", "s16le", "pipe:1"] : ["-an", "-vf", filter, "-f", "rawvideo", "pipe:1"]
        let arguments = ["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-reconnect", "1", "-reconnect_streamed", "1",
                         "-reconnect_delay_max", "2", "-analyzeduration", "1000000", "-i", source] + output
        let audio = audio
        let frameSize = frameSize
        do {
            _ = try await Subprocess.run(.path(FilePath(ffmpeg)), arguments: Arguments(arguments), input: .none, output: .sequence, error: .discarded) { execution in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var pending: [UInt8] = []
                        pending.reserveCapacity(frameSize * 2)
                        do {
                            for try await chunk in execution.standardOutput {
                                chunk.withUnsafeBytes { pending.append(contentsOf: $0) }
                                while pending.count >= frameSize {
                                    let frame = Array(pending[0..<frameSize])
                                    pending.removeFirst(frameSize)
                                    let current = self.shared.withLock { shared -> Bool in
                                        guard shared.generation == generation else { return false }
                                        if audio {
                                            shared.audio += frame
                                            if shared.audio.count > Self.audioBacklog { shared.audio.removeFirst(shared.audio.count - Self.audioBacklog) }
                                        } else {
                                            shared.frame = frame
                                        }
                                        shared.frameAt = Date().timeIntervalSince1970
                                        return true
                                    }
                                    if !current { return }
                                }
                            }
                        } catch {}
                    }
                    group.addTask {
                        // The source changed or the feed stopped: end this decoder. (Cancelled when the decoder
                        // ended by itself: the sleep then throws at once, so the loop must stop on cancellation.)
                        while !Task.isCancelled, self.shared.withLock({ $0.generation == generation }) {
                            try? await Task.sleep(for: .milliseconds(100))
                        }
                    }
                    _ = await group.next()
                    group.cancelAll()
                    try? execution.send(signal: .terminate)
                }
            }
        } catch {
            logger.warning("a wall tile's decoder did not start", metadata: ["error": "\(error)"])
        }
    }

    /// The writer thread: opens the pipe (waiting for the program's ffmpeg to open it), then writes one
    /// frame per tick — the newest decoded one, or the slate — and reopens after the reader goes away.
    private func writeLoop() {
        let period = audio ? 0.02 : 1.0 / Double(fps)
        let silence = [UInt8](repeating: 0, count: Self.audioChunk)
        while !shared.withLock({ $0.stopped }) {
            let fd = open(fifo, O_WRONLY)
            guard fd >= 0 else { Thread.sleep(forTimeInterval: 0.2); continue }
            var deadline = Date().timeIntervalSince1970
            writing: while !shared.withLock({ $0.stopped }) {
                let now = Date().timeIntervalSince1970
                let frame = shared.withLock { shared -> [UInt8] in
                    shared.framesWritten += 1
                    if audio {
                        guard shared.audio.count >= Self.audioChunk else { shared.slateFrames += 1; return silence }
                        defer { shared.audio.removeFirst(Self.audioChunk) }
                        return Array(shared.audio[0..<Self.audioChunk])
                    }
                    let fresh = shared.frame.map { _ in now - shared.frameAt < Self.staleAfter } ?? false
                    if !fresh { shared.slateFrames += 1 }
                    return fresh ? shared.frame! : slate
                }
                let written = frame.withUnsafeBytes { buffer -> Bool in
                    var offset = 0
                    while offset < buffer.count {
                        let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                        if n < 0 { if errno == EINTR { continue }; return false }
                        offset += n
                    }
                    return true
                }
                if !written { break writing }
                // Real-time pacing; after a stall (the reader was busy), start again from now rather than
                // sending a burst of catch-up frames.
                deadline = max(deadline + period, Date().timeIntervalSince1970 - period)
                let wait = deadline - Date().timeIntervalSince1970
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
            close(fd)
        }
    }

    /// A "No signal" frame of a tile's size (rendered once by ffmpeg), or a dark frame if that fails.
    static func slateFrame(width: Int, height: Int, ffmpeg: String, fontFile: String?) async -> [UInt8] {
        let size = width * height * 3 / 2
        let font = fontFile.map { "fontfile=" + RenderPlan.escape($0) } ?? "font=Sans"
        let text = "drawtext=\(font):text='No signal':fontcolor=0xb0b0b0:fontsize=\(max(10, height / 10)):x=(w-text_w)/2:y=(h-text_h)/2"
        if let result = try? await ChildProcess.run(ffmpeg, ["-v", "error", "-f", "lavfi", "-i", "color=c=0x1a1f29:s=\(width)x\(height)", "-vf", text + ",format=yuv420p",
                                                             "-frames:v", "1", "-f", "rawvideo", "pipe:1"], timeout: .seconds(10)),
           result.status == 0, result.stdout.count == size {
            return [UInt8](result.stdout)
        }
        return [UInt8](repeating: 32, count: width * height) + [UInt8](repeating: 128, count: size - width * height)
    }
}
