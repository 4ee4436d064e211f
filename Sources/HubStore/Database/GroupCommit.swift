import HubCore
import Metrics
import SQLKit
import Synchronization

/// Group commit for SQLite's single writer: small write transactions that arrive while one runs share the
/// next database transaction, so a busy registry pays `BEGIN`, `COMMIT`, the WAL write and the connection
/// hand-off once per batch instead of once per write.
///
/// The first caller to find no batch running leads: it runs everything queued (up to ``maxBatch`` bodies,
/// its own first) in one transaction, tells every caller in it that it is done, and hands the lead to the
/// oldest caller still waiting. Each body sees the writes of the bodies before it, exactly as if they had
/// run one after another.
///
/// Contract for a body: it may throw a ``HubError`` (not found, conflict, validation…) only **before** it
/// writes anything. Such an error fails that caller alone; the batch goes on. Any other error rolls the
/// whole batch back, and then every body of it runs again in its own transaction, so one failing write
/// never takes its neighbours with it.
final class GroupCommit: Sendable {
    /// Most bodies in one transaction.
    static let maxBatch = 64

    private struct Item: Sendable {
        let ticket: Ticket
        /// Runs the body inside the shared transaction; keeps its result (or its ``HubError``) for the caller.
        let attempt: @Sendable (any SQLDatabase) async throws -> Void
        /// Runs the body in a transaction of its own; keeps its result or error.
        let alone: @Sendable (HubDatabase) async -> Void
    }

    private struct State {
        var queue: [Item] = []
        var leading = false
    }

    private let state = Mutex(State())
    private let counts = Mutex((batches: 0, writes: 0))
    private let batches: Counter
    private let batchedWrites: Counter
    private let rolledBack: Counter

    init(metrics: any MetricsFactory) {
        batches = Counter(label: "streamhub_db_write_batches_total", dimensions: [], factory: metrics)
        batchedWrites = Counter(label: "streamhub_db_batched_writes_total", dimensions: [], factory: metrics)
        rolledBack = Counter(label: "streamhub_db_write_batch_rollbacks_total", dimensions: [], factory: metrics)
    }

    /// Transactions run and writes committed through them so far.
    var stats: (batches: Int, writes: Int) { counts.withLock { $0 } }

    func run<T: Sendable>(on database: HubDatabase, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let ticket = Ticket()
        let item = Item(
            ticket: ticket,
            attempt: { db in
                do {
                    let value = try await body(db)
                    result.withLock { $0 = .success(value) }
                } catch let error as HubError {
                    result.withLock { $0 = .failure(error) }
                }
            },
            alone: { database in
                do {
                    let value = try await database.transaction(body)
                    result.withLock { $0 = .success(value) }
                } catch {
                    result.withLock { $0 = .failure(error) }
                }
            })
        let lead = state.withLock { state in
            state.queue.append(item)
            if state.leading { return false }
            state.leading = true
            return true
        }
        if lead { await runBatch(on: database) }
        while true {
            switch await ticket.wait() {
            case .lead:
                await runBatch(on: database)
            case .done:
                guard let outcome = result.withLock({ $0 }) else { throw HubError.internalError() }
                return try outcome.get()
            }
        }
    }

    /// Runs one batch from the front of the queue, answers its callers and passes the lead on.
    private func runBatch(on database: HubDatabase) async {
        let batch = state.withLock { state in
            let batch = Array(state.queue.prefix(Self.maxBatch))
            state.queue.removeFirst(batch.count)
            return batch
        }
        if batch.count == 1 {
            await batch[0].alone(database)
        } else if !batch.isEmpty {
            do {
                try await database.transaction { db in
                    for item in batch { try await item.attempt(db) }
                }
            } catch {
                rolledBack.increment()
                for item in batch { await item.alone(database) }
            }
        }
        if !batch.isEmpty {
            counts.withLock { $0.batches += 1; $0.writes += batch.count }
            batches.increment()
            batchedWrites.increment(by: batch.count)
        }
        let next = state.withLock { state -> Ticket? in
            guard let first = state.queue.first else {
                state.leading = false
                return nil
            }
            return first.ticket
        }
        for item in batch { item.ticket.send(.done) }
        next?.send(.lead)
    }

    /// One caller's mailbox: told once to lead a batch or that its write is done (a signal sent before the
    /// caller waits is kept).
    private final class Ticket: Sendable {
        enum Signal: Sendable { case lead, done }

        private let state = Mutex<(pending: [Signal], waiter: CheckedContinuation<Signal, Never>?)>(([], nil))

        func send(_ signal: Signal) {
            let waiter = state.withLock { state -> CheckedContinuation<Signal, Never>? in
                if let waiter = state.waiter {
                    state.waiter = nil
                    return waiter
                }
                state.pending.append(signal)
                return nil
            }
            waiter?.resume(returning: signal)
        }

        func wait() async -> Signal {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Signal? in
                    if !state.pending.isEmpty { return state.pending.removeFirst() }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}
