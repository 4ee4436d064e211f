import AsyncHTTPClient
import Foundation
import HubCore
import Logging
import NIOCore
import Realtime
import ServiceLifecycle
import SQLKit

/// Deletes segments past each recording's retention: files first, then rows (a crash in between leaves rows
/// without files, which the next resume drops), never a segment a playlist handed out in the last minute
/// still lists. Each instance cleans the recordings on its own disk.
struct RetentionCleaner: Service {
    let supervisor: RecorderSupervisor
    let interval: Double
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await sweep() } catch {
                logger.error("retention sweep failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(interval)) }
        }
    }

    /// One pass over every recording directory on this instance's disk; answers the segments deleted.
    @discardableResult
    func sweep(now: Double = Timestamp.now()) async throws -> Int {
        let store = supervisor.store
        let local = ((try? FileManager.default.contentsOfDirectory(atPath: store.root)) ?? []).filter(RecordingID.isValid)
        guard !local.isEmpty else { return 0 }
        var retention: [String: Double] = [:]
        for row in try await supervisor.database.sql.raw("SELECT id, retention FROM recordings").all() {
            retention[try row.decode(column: "id", as: String.self)] = try row.decode(column: "retention", as: Double.self)
        }
        var deleted = 0
        for id in local {
            guard let keep = retention[id] else { continue }
            let below = supervisor.handouts.lowest(id, now: now) ?? Int.max
            while true {
                let expired = try await supervisor.index.expired(id, before: now - keep, below: below)
                guard let last = expired.last else { break }
                supervisor.runtime(id)?.forget(through: last.sequence)
                await store.remove(expired.map(\.file), recording: id)
                try await supervisor.index.deleteRows(id, fileNames: expired.map(\.file))
                for map in Set(expired.compactMap(\.map)) where try await !supervisor.index.mapInUse(id, map) {
                    await store.remove([map], recording: id)
                }
                deleted += expired.count
                if expired.count < 2_000 { break }
            }
        }
        if deleted > 0 { logger.info("retention removed segments", metadata: ["segments": "\(deleted)"]) }
        return deleted
    }
}

/// Makes a JPEG thumbnail of each recording's newest segment every few seconds (ffmpeg, two at a time),
/// stores it as `preview.jpg`, and sends it to `target=preview` clients as a binary frame: a 4-byte big-endian
/// header length, a JSON header, then the JPEG bytes.
struct PreviewMaker: Service {
    let supervisor: RecorderSupervisor
    let hub: WebSocketHub
    let interval: Double
    let ffmpegPath: String
    let logger: Logger

    func run() async throws {
        let slots = AsyncSemaphore(2)
        var last: [String: ContinuousClock.Instant] = [:]
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let now = ContinuousClock.now
                for (runtime, file, map) in supervisor.newestSegments() {
                    if let previous = last[runtime.id], now - previous < .seconds(interval) {
                        // Not due yet: look again next round.
                        runtime.state.withLock { $0.newestChanged = true }
                        continue
                    }
                    last[runtime.id] = now
                    group.addTask {
                        await slots.wait()
                        defer { slots.signal() }
                        await make(runtime.id, file: file, map: map)
                    }
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(max(0.5, min(interval, 2)))) }
            }
        }
    }

    func make(_ id: String, file: String, map: String?) async {
        let directory = supervisor.store.directory(id)
        let input = map.map { "concat:\(directory)/\($0)|\(directory)/\(file)" } ?? "\(directory)/\(file)"
        let temporary = directory + "/preview.jpg.part.jpg", final = directory + "/preview.jpg"
        guard let result = try? await ChildProcess.run(ffmpegPath, [
            "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", input, "-frames:v", "1", "-vf", "scale=320:-2", "-q:v", "5",
            "-f", "image2", temporary,
        ], timeout: .seconds(15)), result.status == 0, rename(temporary, final) == 0,
              let jpeg = FileManager.default.contents(atPath: final)
        else {
            unlink(temporary)
            return
        }
        let header = JSONText.object([
            ("type", .string("preview")), ("recordingId", .string(id)), ("timestamp", .int(Int(Timestamp.now() * 1000))),
            ("segment", .string(file)), ("format", .string("jpeg")), ("size", .int(jpeg.count)),
            ("url", .string("/recordings/\(id)/preview.jpg")),
        ])
        var frame = ByteBuffer()
        frame.writeInteger(UInt32(header.utf8.count), endianness: .big)
        frame.writeString(header)
        frame.writeBytes(jpeg)
        hub.broadcast(frame: WebSocketWire.binaryFrame(frame), to: RecorderModule.previewTopic, visibility: .recording(id))
    }
}

/// Sends every `recording_state` event (from any instance) to `target=state` clients as a `stateUpdate`.
struct StateForwarder: Service {
    let bus: EventBus
    let hub: WebSocketHub

    func run() async throws {
        for await envelope in bus.subscribe(types: [RecorderModule.stateEvent]).cancelOnGracefulShutdown() {
            hub.broadcast(text: Self.stateUpdate(envelope.payload), to: RecorderModule.stateTopic, visibility: envelope.visibility)
        }
    }

    static func stateUpdate(_ payload: ByteBuffer) -> ByteBuffer {
        var payload = payload
        var frame = ByteBuffer()
        frame.reserveCapacity(payload.readableBytes + 32)
        frame.writeString("{\"type\":\"stateUpdate\",\"payload\":")
        frame.writeBuffer(&payload)
        frame.writeString("}")
        return frame
    }
}
