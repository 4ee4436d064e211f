import Foundation
import Synchronization

/// What the access checks know of accounts and API keys, kept `ttl` seconds. Every request needs one, so
/// the cache must not stall them: when an entry is older than `ttl` the request is answered with it while
/// one background fetch renews it; a missing entry is fetched once for all the requests that want it at the
/// same moment. `forget`/`forgetAll` (a revocation, a role change) take effect at once: a fetch that
/// started before them does not put the old answer back.
final class CredentialCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var entries: [Key: (value: Value, fetchedAt: Double)] = [:]
        var fetches: [Key: (generation: UInt64, task: Task<Value, any Error>)] = [:]
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    let ttl: Double
    let capacity: Int

    init(ttl: Double, capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// The value for `key`: cached, or fetched by one of the callers that want it now.
    func value(for key: Key, now: Double = Date().timeIntervalSince1970, fetch: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let (cached, task) = state.withLock { state -> (Value?, Task<Value, any Error>?) in
            let entry = state.entries[key]
            if let entry, now - entry.fetchedAt < ttl { return (entry.value, nil) }
            let task = state.fetches[key]?.task ?? start(key, fetch: fetch, in: &state)
            return (entry?.value, task)
        }
        // Stale: answer it now; the fetch renews it for the next request.
        if let cached { return cached }
        return try await task!.value
    }

    private func start(_ key: Key, fetch: @escaping @Sendable () async throws -> Value, in state: inout State) -> Task<Value, any Error> {
        let generation = state.generation
        let task = Task<Value, any Error> {
            defer { self.state.withLock { state in if state.fetches[key]?.generation == generation { state.fetches[key] = nil } } }
            let value = try await fetch()
            self.state.withLock { state in
                guard state.generation == generation else { return }
                if state.entries.count >= self.capacity { state.entries.removeAll() }
                state.entries[key] = (value, Date().timeIntervalSince1970)
            }
            return value
        }
        state.fetches[key] = (generation, task)
        return task
    }

    func forget(_ key: Key) {
        state.withLock { state in
            state.generation &+= 1
            state.entries[key] = nil
            state.fetches[key] = nil
        }
    }

    func forgetAll() {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeAll()
            state.fetches.removeAll()
        }
    }
}
