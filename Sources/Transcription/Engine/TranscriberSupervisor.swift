import Foundation
import HubCore
import HubStore
import Logging
import Metrics
import ServiceLifecycle
import SQLKit
import Synchronization

/// Runs this instance's share of the transcribers. Each transcriber is leased like a recording (a row with
/// owner and expiry, renewed every third of the lease): every instance claims running transcribers nobody
/// holds, up to `maxTranscribers`, and stops those stopped elsewhere. With SQLite (one instance) the first
/// round resumes every running transcriber at once. State and counters are saved every round and on every
/// change of state.
public final class TranscriberSupervisor: Service, Sendable {
    public static let stateEvent = "transcriber_state"
    /// A transcriber was created, stopped or started somewhere: every instance's supervisor runs a round.
    static let changedEvent = "internal.transcribers_changed"

    let database: HubDatabase
    let context: TranscriptionContext
    let settings: HubConfiguration.TranscriptionSettings
    let instanceID: String
    let health: ServiceHealth?
    /// The state each transcriber last published.
    private let lastPublished = Mutex<[String: TranscriberState]>([:])
    private let workers = Mutex<[String: (runtime: TranscriberRuntime, task: Task<Void, Never>)]>([:])
    private let kicks: AsyncStream<Void>
    private let kicker: AsyncStream<Void>.Continuation
    let running: Gauge

    init(database: HubDatabase, context: TranscriptionContext, settings: HubConfiguration.TranscriptionSettings, instanceID: String,
         health: ServiceHealth?, metrics: any MetricsFactory) {
        self.database = database
        self.context = context
        self.settings = settings
        self.instanceID = instanceID
        self.health = health
        (kicks, kicker) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        running = Gauge(label: "streamhub_transcription_transcribers_running", factory: metrics)
    }

    /// Asks every instance for a round now (a transcriber was created, stopped or started through this one).
    func kick() {
        kicker.yield()
        context.bus.publish(type: Self.changedEvent, payload: .init(string: "{}"), visibility: .nobody)
    }

    /// The transcribers this instance runs, as they are now.
    func snapshots() -> [String: Transcriber] {
        workers.withLock { $0.mapValues { $0.runtime.transcriber } }
    }

    public func run() async throws {
        // Whether the built-in engine can run is checked when it is first needed (a Python start-up is not
        // free); GET /api/v1/transcribers/engines says.
        health?.report("transcription", .running, detail: "\(settings.maxTranscribers) transcribers at most")
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // A round on every kick, and every third of the lease.
                await self.round(resumeAll: self.database.kind == .sqlite)
                for await _ in self.kicks.cancelOnGracefulShutdown() {
                    await self.round(resumeAll: false)
                }
            }
            group.addTask {
                // Another instance's change: a round here too (the change may be a transcriber this instance runs).
                for await envelope in self.context.bus.subscribe(types: [Self.changedEvent]).cancelOnGracefulShutdown()
                where envelope.origin != self.instanceID {
                    self.kicker.yield()
                }
            }
            group.addTask {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(self.settings.leaseDuration / 3)) }
                    self.kicker.yield()
                }
                self.kicker.finish()
            }
            group.addTask {
                // Saves changed state once a second and publishes changes of state.
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                    await self.saveChanged()
                }
            }
            await group.waitForAll()
        }
        await stopAll()
        health?.report("transcription", .stopped)
    }

    /// Saves every changed transcriber and publishes a `transcriber_state` event when its state changed.
    func saveChanged() async {
        for (runtime, _) in workers.withLock({ Array($0.values) }) {
            guard let changed = runtime.takeDirty() else { continue }
            do {
                try await context.store.save(changed, owner: instanceID)
            } catch {
                runtime.markDirty()
                continue
            }
            let previous = lastPublished.withLock { $0.updateValue(changed.state, forKey: changed.id) }
            if previous != changed.state {
                context.bus.publish(type: Self.stateEvent, payload: .init(string: changed.json), visibility: .viewers)
            }
        }
    }

    /// Renews our leases, stops transcribers stopped (or finished) elsewhere, and claims running ones nobody holds.
    func round(resumeAll: Bool) async {
        let now = Timestamp.now()
        let until = now + settings.leaseDuration
        do {
            // Finished workers leave.
            for (id, worker) in workers.withLock({ $0 }) where worker.runtime.transcriber.state == .finished {
                await worker.task.value
                await saveChanged()
                _ = workers.withLock { $0.removeValue(forKey: id) }
            }
            try await database.sql.raw("""
                UPDATE transcribers SET lease_until = \(bind: until) WHERE owner = \(bind: instanceID) AND desired = 'running'
                """).run()
            let stopped = try await database.sql.raw("""
                SELECT id FROM transcribers WHERE owner = \(bind: instanceID) AND (desired = 'stopped' OR lease_until < \(bind: now))
                """).all().map { try $0.decode(column: "id", as: String.self) }
            for id in stopped { await stop(id) }
            let room = settings.maxTranscribers - workers.withLock { $0.count }
            running.record(workers.withLock { $0.count })
            guard room > 0 else { return }
            let cutoff = resumeAll ? Double.greatestFiniteMagnitude : now
            let candidates = try await database.sql.raw("""
                SELECT id FROM transcribers WHERE desired = 'running' AND lease_until < \(bind: cutoff) ORDER BY created_at LIMIT \(bind: room)
                """).all().map { try $0.decode(column: "id", as: String.self) }
            for id in candidates where workers.withLock({ $0[id] == nil }) {
                let claimed = try await database.sql.raw("""
                    UPDATE transcribers SET owner = \(bind: instanceID), lease_until = \(bind: until)
                    WHERE id = \(bind: id) AND desired = 'running' AND lease_until < \(bind: cutoff) RETURNING \(unsafeRaw: Transcriber.columns)
                    """).first()
                guard let claimed else { continue }
                start(try Transcriber(row: claimed))
            }
            running.record(workers.withLock { $0.count })
        } catch {
            context.logger.error("transcriber lease round failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    private func start(_ claimed: Transcriber) {
        var transcriber = claimed
        transcriber.owner = instanceID
        // One session a run: a new one each time an instance takes the transcriber.
        transcriber.sessionID = UUID().uuidString.lowercased()
        transcriber.state = .waiting
        let runtime = TranscriberRuntime(transcriber)
        let worker = TranscriberWorker(runtime: runtime, context: context, instanceID: instanceID)
        context.logger.info("transcriber started", metadata: ["transcriber_id": "\(claimed.id)", "engine": "\(claimed.engine)"])
        let task = Task { await worker.run() }
        workers.withLock { $0[claimed.id] = (runtime, task) }
    }

    /// Stops one worker and saves its last state.
    func stop(_ id: String) async {
        guard let worker = workers.withLock({ $0.removeValue(forKey: id) }) else { return }
        worker.task.cancel()
        await worker.task.value
        let runtime = worker.runtime
        let desired = try? await context.store.get(id)
        runtime.change { t in
            if t.state != .finished {
                t.state = desired?.desiredRunning == false ? .stopped : .waiting
            }
            if desired?.desiredRunning == false { t.stoppedAt = t.stoppedAt ?? Timestamp.now() }
        }
        if let last = runtime.takeDirty() { try? await context.store.save(last, owner: instanceID) }
        lastPublished.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// Stops every worker (shutdown): their state is saved and the leases handed back.
    private func stopAll() async {
        for id in workers.withLock({ Array($0.keys) }) { await stop(id) }
        try? await database.sql.raw("UPDATE transcribers SET lease_until = 0 WHERE owner = \(bind: instanceID)").run()
    }
}
