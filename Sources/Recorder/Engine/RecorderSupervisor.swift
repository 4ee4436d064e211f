import AsyncHTTPClient
import Foundation
import HLS
import HubCore
import HubStore
import Logging
import Metrics
import NIOCore
import SQLKit
import ServiceLifecycle
import Synchronization

/// Runs the recordings this instance holds the lease of: starts them (and resumes them after a restart),
/// renews the leases, takes over recordings whose owner went away, batches index writes, and publishes
/// `recording_state` events.
public final class RecorderSupervisor: Service, Sendable {
    enum Command: Sendable {
        case start(String)
    }

    let database: HubDatabase
    let index: SegmentIndex
    let store: SegmentStore
    let fetcher: GuardedFetcher
    let guardrail: SourceURLGuard
    let preprocessor: PreProcessor
    let settings: HubConfiguration.RecorderSettings
    let instanceID: String
    let bus: EventBus
    let logger: Logger
    let metricsFactory: any MetricsFactory
    let downloads: AsyncSemaphore
    let handouts = HandoutLog()

    private let runtimes = Mutex<[String: RecordingRuntime]>([:])
    private let pending = Mutex<[IndexedSegment]>([])
    /// Last snapshots of recordings whose fetch loop ended, for the next flush.
    private let finals = Mutex<[Recording]>([])
    private let maps = Mutex<[String: [String: String]]>([:])
    private let commands: AsyncStream<Command>
    private let continuation: AsyncStream<Command>.Continuation
    private let probes = AsyncSemaphore(2)
    let running = Gauge(label: "streamhub_recorder_recordings_running")

    init(database: HubDatabase, store: SegmentStore, fetcher: GuardedFetcher, guardrail: SourceURLGuard, settings: HubConfiguration.RecorderSettings,
         instanceID: String, bus: EventBus, logger: Logger, metrics: any MetricsFactory) {
        self.database = database
        self.index = SegmentIndex(database: database)
        self.store = store
        self.fetcher = fetcher
        self.guardrail = guardrail
        self.preprocessor = PreProcessor(fetcher: fetcher, ytDLPPath: settings.ytDLPPath, ffprobePath: settings.ffprobePath)
        self.settings = settings
        self.instanceID = instanceID
        self.bus = bus
        self.logger = logger
        self.metricsFactory = metrics
        self.downloads = AsyncSemaphore(settings.concurrency)
        (commands, continuation) = AsyncStream.makeStream(of: Command.self, bufferingPolicy: .unbounded)
    }

    // MARK: - The service

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.flushLoop() }
            group.addTask { await self.leaseLoop() }
            for await command in commands.cancelOnGracefulShutdown() {
                switch command {
                case .start(let id):
                    guard let runtime = runtimes.withLock({ $0[id] }) else { continue }
                    group.addTask {
                        await RecordingWorker(runtime: runtime, supervisor: self, logger: self.logger).run()
                        self.detach(runtime)
                    }
                }
            }
            group.cancelAll()
        }
        await flush()
        // Hand the leases back so another instance (or the next start) takes over at once.
        try? await database.sql.raw("UPDATE recordings SET lease_until = 0 WHERE owner = \(bind: instanceID)").run()
    }

    func flushLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            await flush()
        }
    }

    /// Writes queued index rows and changed counters in one transaction, and publishes counter changes (at
    /// most one event a second per recording).
    func flush() async {
        let rows = pending.withLock { rows -> [IndexedSegment] in defer { rows = [] }; return rows }
        let now = Timestamp.now()
        var dirty = finals.withLock { finals -> [Recording] in defer { finals = [] }; return finals }
        let finalCount = dirty.count
        var publish: [Recording] = []
        for runtime in runtimes.withLock({ Array($0.values) }) {
            runtime.state.withLock { state in
                guard state.dirty else { return }
                state.dirty = false
                dirty.append(state.recording)
                if now - state.lastPublishedAt >= 1, state.lastPublished.map({ state.recording.differsVisibly(from: $0) }) ?? true {
                    state.lastPublished = state.recording
                    state.lastPublishedAt = now
                    publish.append(state.recording)
                }
            }
        }
        do {
            try await index.write(rows, recordings: dirty, owner: instanceID)
        } catch {
            if !(error is CancellationError) {
                logger.error("could not write the recording index; retrying", metadata: ["error": "\(String(reflecting: error))", "segments": "\(rows.count)"])
            }
            pending.withLock { $0.insert(contentsOf: rows, at: 0) }
            finals.withLock { $0.insert(contentsOf: dirty.prefix(finalCount), at: 0) }
            for recording in dirty.dropFirst(finalCount) { runtimes.withLock { $0[recording.id] }?.state.withLock { $0.dirty = true } }
        }
        for recording in publish { self.publish(recording) }
    }

    func leaseLoop() async {
        var firstRound = true
        while !Task.isCancelled {
            await renewAndClaim(resumeAll: firstRound && database.kind == .sqlite)
            firstRound = false
            try? await Task.sleep(for: .seconds(settings.leaseDuration / 3))
        }
    }

    /// Renews our leases, stops recordings stopped elsewhere, and claims running recordings nobody holds.
    /// With SQLite (one instance by construction) the first round resumes every running recording at once.
    func renewAndClaim(resumeAll: Bool) async {
        let now = Timestamp.now()
        let until = now + settings.leaseDuration
        do {
            try await database.sql.raw("UPDATE recordings SET lease_until = \(bind: until) WHERE owner = \(bind: instanceID) AND desired = 'running'").run()
            let stopped = try await database.sql.raw("""
                SELECT id FROM recordings WHERE owner = \(bind: instanceID) AND desired = 'stopped'
                """).all().map { try $0.decode(column: "id", as: String.self) }
            for id in stopped { runtimes.withLock { $0[id] }?.stop.fire() }
            let room = settings.maxRecordings - runtimes.withLock { $0.count }
            guard room > 0 else { return }
            let cutoff = resumeAll ? Double.greatestFiniteMagnitude : now
            let candidates = try await database.sql.raw("""
                SELECT id FROM recordings WHERE desired = 'running' AND lease_until < \(bind: cutoff) ORDER BY created_at LIMIT \(bind: room)
                """).all().map { try $0.decode(column: "id", as: String.self) }
            for id in candidates where runtimes.withLock({ $0[id] == nil }) {
                let claimed = try await database.sql.raw("""
                    UPDATE recordings SET owner = \(bind: instanceID), lease_until = \(bind: until)
                    WHERE id = \(bind: id) AND desired = 'running' AND lease_until < \(bind: cutoff) RETURNING \(unsafeRaw: Recording.columns)
                    """).first()
                guard let claimed else { continue }
                try await resume(try Recording(row: claimed))
            }
        } catch {
            logger.error("recording lease round failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Brings a claimed recording back: files and index made to agree, the recent window and numbering
    /// loaded, then its fetch loop started.
    func resume(_ recording: Recording) async throws {
        let indexed = try await index.fileNames(recording.id)
        let (removed, missing) = try await store.reconcile(recording.id, indexed: indexed)
        if !missing.isEmpty { try await index.deleteRows(recording.id, fileNames: Array(missing)) }
        if removed > 0 || !missing.isEmpty {
            logger.notice("recording files and index reconciled", metadata: [
                "recording_id": "\(recording.id)", "orphan_files_removed": "\(removed)", "rows_without_files_removed": "\(missing.count)",
            ])
        }
        let recent = try await index.recent(recording.id, limit: RecordingRuntime.recentCapacity)
        var before = 0
        if let first = recent.first { before = try await index.discontinuities(recording.id, before: first.sequence) }
        let last = try await index.last(recording.id)
        var current = recording
        current.owner = instanceID
        if current.state != .starting { current.state = .stalled; current.error = "resuming" }
        let runtime = RecordingRuntime(recording: current, metrics: RecordingMetrics(recording: recording.id, factory: metricsFactory))
        runtime.state.withLock { state in
            state.recent.append(contentsOf: recent)
            state.discontinuitiesDropped = before
            state.nextSequence = (last?.sequence ?? -1) + 1
            state.lastSourceSequence = last?.sourceSequence
            state.lastEndsAt = last?.endsAt
            state.probed = current.codec != nil
            state.newestFile = recent.last?.fileName
        }
        logger.info("resuming recording", metadata: ["recording_id": "\(recording.id)", "segments": "\(recording.segments)"])
        attach(runtime)
    }

    // MARK: - Starting and stopping

    func attach(_ runtime: RecordingRuntime) {
        runtimes.withLock { $0[runtime.id] = runtime }
        running.record(runtimes.withLock { $0.count })
        publishNow(runtime)
        continuation.yield(.start(runtime.id))
    }

    func detach(_ runtime: RecordingRuntime) {
        runtimes.withLock { _ = $0.removeValue(forKey: runtime.id) }
        running.record(runtimes.withLock { $0.count })
        maps.withLock { _ = $0.removeValue(forKey: runtime.id) }
        // Its last counters and state go out with the next flush (it is no longer among the runtimes).
        let final = runtime.snapshot
        finals.withLock { $0.append(final) }
    }

    var count: Int { runtimes.withLock { $0.count } }

    func runtime(_ id: String) -> RecordingRuntime? { runtimes.withLock { $0[id] } }

    /// A recording: the running snapshot when this instance records it, else its row; nil when there is none.
    func recording(_ id: String) async throws -> Recording? {
        if let runtime = runtime(id) { return runtime.snapshot }
        // A fetch loop that just ended: its last snapshot is newer than the row until the next flush.
        if let final = finals.withLock({ $0.last { $0.id == id } }) { return final }
        return try await database.reader.raw("SELECT \(unsafeRaw: Recording.columns) FROM recordings WHERE id = \(bind: id)").first()
            .map(Recording.init(row:))
    }

    /// Creates and starts a recording held by this instance.
    func start(_ recording: Recording) async throws {
        var recording = recording
        recording.owner = instanceID
        try await database.sql.raw("""
            INSERT INTO recordings (id, source_url, input_kind, media_url, stream_id, variant, retention, state, desired, created_by, created_at,
            started_at, updated_at, owner, lease_until) VALUES (\(bind: recording.id), \(bind: recording.sourceURL), \(bind: recording.inputKind.rawValue),
            \(bind: recording.mediaURL), \(bind: recording.streamID), \(bind: recording.variant), \(bind: recording.retention), 'starting', 'running',
            \(bind: recording.createdBy), \(bind: recording.createdAt), \(bind: recording.startedAt), \(bind: recording.updatedAt), \(bind: instanceID),
            \(bind: recording.createdAt + settings.leaseDuration))
            """).run()
        attach(RecordingRuntime(recording: recording, metrics: RecordingMetrics(recording: recording.id, factory: metricsFactory)))
    }

    /// Stops a recording wherever it runs; what it recorded stays until retention removes it.
    func stop(_ id: String) async throws -> Bool {
        let now = Timestamp.now()
        if let runtime = runtime(id) {
            runtime.stop.fire()
            change(runtime) { recording in
                recording.desiredRunning = false
                recording.state = .stopped
                recording.stoppedAt = recording.stoppedAt ?? now
            }
        }
        // Another instance sees `desired` at its next lease round and stops its fetch loop.
        let rows = try await database.sql.raw("""
            UPDATE recordings SET desired = 'stopped', state = CASE WHEN state IN ('starting', 'recording', 'stalled') THEN 'stopped' ELSE state END,
            stopped_at = COALESCE(stopped_at, \(bind: now)), updated_at = \(bind: now) WHERE id = \(bind: id) RETURNING id
            """).all()
        return !rows.isEmpty
    }

    /// The fetch loop saw its stop signal.
    func finishStopped(_ runtime: RecordingRuntime) {
        guard runtime.snapshot.desiredRunning == false || runtime.stop.isFired, !Task.isCancelled else { return }
        change(runtime) { recording in
            recording.state = .stopped
            recording.desiredRunning = false
            recording.stoppedAt = recording.stoppedAt ?? Timestamp.now()
        }
    }

    // MARK: - Used by the fetch loop

    /// Changes a running recording; a change in state or error is published at once.
    func change(_ runtime: RecordingRuntime, _ body: (inout Recording) -> Void) {
        let before = runtime.snapshot
        let after = runtime.update(body)
        if before.state != after.state || before.error != after.error || before.mediaURL != after.mediaURL {
            if before.state != after.state {
                logger.info("recording state", metadata: ["recording_id": "\(after.id)", "state": "\(after.state.rawValue)",
                                                          "error": "\(after.error ?? "")"])
            }
            publishNow(runtime)
        }
    }

    func publishNow(_ runtime: RecordingRuntime) {
        let recording = runtime.state.withLock { state -> Recording in
            state.lastPublished = state.recording
            state.lastPublishedAt = Timestamp.now()
            return state.recording
        }
        publish(recording)
    }

    func publish(_ recording: Recording) {
        bus.publish(type: RecorderModule.stateEvent, payload: ByteBuffer(string: recording.statePayload), visibility: .recording(recording.id))
    }

    func enqueue(_ segment: IndexedSegment) {
        pending.withLock { $0.append(segment) }
    }

    func knownMap(_ recording: String, url: String) -> String? { maps.withLock { $0[recording]?[url] } }
    func rememberMap(_ recording: String, url: String, name: String) { maps.withLock { $0[recording, default: [:]][url] = name } }

    /// New segments arrived: probe the media once (ffprobe on the stored file).
    func segmentsCommitted(_ runtime: RecordingRuntime) {
        let target = runtime.state.withLock { state -> (String, String?)? in
            guard !state.probed, let newest = state.recent.last else { return nil }
            state.probed = true
            return (newest.fileName, newest.map)
        }
        guard let (file, map) = target else { return }
        Task {
            await probes.wait()
            defer { probes.signal() }
            let directory = store.directory(runtime.id)
            var path = directory + "/" + file
            var temporary: String?
            if let map, let initData = FileManager.default.contents(atPath: directory + "/" + map),
               let segment = FileManager.default.contents(atPath: path) {
                // An fMP4 fragment needs its init section in front to be probed.
                let joined = NSTemporaryDirectory() + "streamhub-probe-\(runtime.id)-\(file).mp4"
                _ = FileManager.default.createFile(atPath: joined, contents: initData + segment)
                path = joined
                temporary = joined
            }
            defer { if let temporary { unlink(temporary) } }
            guard let info = await preprocessor.probe(path) else { return }
            change(runtime) { recording in
                recording.codec = info.codec
                recording.width = info.width
                recording.height = info.height
                recording.fps = info.fps
                recording.bitrate = info.bitrate
            }
            publishNow(runtime)
        }
    }

    /// The newest segment file of every running recording that has a new one since the last call.
    func newestSegments() -> [(runtime: RecordingRuntime, file: String, map: String?)] {
        runtimes.withLock { Array($0.values) }.compactMap { runtime in
            runtime.state.withLock { state in
                guard state.newestChanged, let newest = state.recent.last else { return nil }
                state.newestChanged = false
                return (runtime, newest.fileName, newest.map)
            }
        }
    }

    /// Every running recording's current snapshot.
    func snapshots() -> [String: Recording] {
        var snapshots = Dictionary(finals.withLock { $0.map { ($0.id, $0) } }, uniquingKeysWith: { _, newer in newer })
        for (id, runtime) in runtimes.withLock({ $0 }) { snapshots[id] = runtime.snapshot }
        return snapshots
    }
}

/// Which segments playlists handed out recently: retention never deletes a segment a playlist served in
/// the last minute still lists. Kept as the lowest sequence handed out per recording per 10-second slot.
final class HandoutLog: Sendable {
    private let slots = Mutex<[String: [(slot: Int, lowest: Int)]]>([:])

    func note(_ recording: String, lowest: Int, now: Double = Timestamp.now()) {
        let slot = Int(now / 10)
        slots.withLock { slots in
            var entries = slots[recording] ?? []
            if let last = entries.last, last.slot == slot {
                if lowest < last.lowest { entries[entries.count - 1].lowest = lowest } else { return }
            } else {
                entries.append((slot, lowest))
                entries.removeAll { $0.slot < slot - 7 }
            }
            slots[recording] = entries
        }
    }

    /// The lowest sequence a playlist listed within `window` seconds, if any.
    func lowest(_ recording: String, within window: Double = 70, now: Double = Timestamp.now()) -> Int? {
        let oldest = Int((now - window) / 10)
        return slots.withLock { $0[recording]?.filter { $0.slot >= oldest }.map(\.lowest).min() }
    }
}
