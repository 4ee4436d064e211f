import Foundation
import HubCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Token buckets by key: each key may spend `limit` requests per `window`, refilled continuously. Kept in
/// memory, and shared between instances by ``RateLimitSync``: every spend (and reset) here is noted and
/// sent to the others over the bus a quarter of a second later, and theirs are applied here — so a limit
/// holds for the whole deployment, not per instance, without a database round trip per request.
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    public let limit: Int
    public let window: Double
    private let buckets = Mutex<[String: Bucket]>([:])
    /// Spends and resets made here since they were last sent to the other instances.
    private let unsent = Mutex<(spends: [String: Int], resets: Set<String>)>(([:], []))
    private static let maxKeys = 100_000

    public init(limit: Int, window: Double = 60) {
        self.limit = max(1, limit)
        self.window = window
    }

    private var refillPerSecond: Double { Double(limit) / window }

    /// Spends one request for `key`: `nil` when allowed, else the seconds until one is available.
    public func take(_ key: String, now: Double = Date().timeIntervalSince1970) -> Int? {
        buckets.withLock { buckets in
            var bucket = refilled(buckets[key], now: now)
            defer {
                if buckets.count >= Self.maxKeys { prune(&buckets, now: now) }
                buckets[key] = bucket
            }
            guard bucket.tokens >= 1 else { return retryAfter(bucket) }
            bucket.tokens -= 1
            unsent.withLock { unsent in
                if unsent.spends.count < Self.maxKeys { unsent.spends[key, default: 0] += 1 }
                unsent.resets.remove(key)
            }
            return nil
        }
    }

    /// Spends another instance made: taken from the bucket (down to nothing), never refused.
    public func applyRemote(spent count: Int, for key: String, now: Double = Date().timeIntervalSince1970) {
        buckets.withLock { buckets in
            var bucket = refilled(buckets[key], now: now)
            bucket.tokens = max(0, bucket.tokens - Double(count))
            if buckets.count >= Self.maxKeys { prune(&buckets, now: now) }
            buckets[key] = bucket
        }
    }

    /// A reset another instance made.
    public func applyRemoteReset(_ key: String) {
        _ = buckets.withLock { $0.removeValue(forKey: key) }
    }

    /// What changed here since the last call, to send to the other instances.
    public func drainUnsent() -> (spends: [String: Int], resets: [String]) {
        unsent.withLock { unsent in
            defer { unsent = ([:], []) }
            return (unsent.spends, Array(unsent.resets))
        }
    }

    /// Seconds until `key` may try again, without spending anything; `nil` when it may now.
    public func blocked(_ key: String, now: Double = Date().timeIntervalSince1970) -> Int? {
        buckets.withLock { buckets in
            let bucket = refilled(buckets[key], now: now)
            return bucket.tokens >= 1 ? nil : retryAfter(bucket)
        }
    }

    /// Forgets `key` (a successful login clears its failures).
    public func reset(_ key: String) {
        _ = buckets.withLock { $0.removeValue(forKey: key) }
        unsent.withLock { unsent in
            unsent.spends.removeValue(forKey: key)
            unsent.resets.insert(key)
        }
    }

    private func refilled(_ bucket: Bucket?, now: Double) -> Bucket {
        guard var bucket else { return Bucket(tokens: Double(limit), updated: now) }
        bucket.tokens = min(Double(limit), bucket.tokens + max(0, now - bucket.updated) * refillPerSecond)
        bucket.updated = now
        return bucket
    }

    private func retryAfter(_ bucket: Bucket) -> Int {
        max(1, Int(((1 - bucket.tokens) / refillPerSecond).rounded(.up)))
    }

    private func prune(_ buckets: inout [String: Bucket], now: Double) {
        buckets = buckets.filter { refilled($0.value, now: now).tokens < Double(limit) }
    }
}

/// Shares the write and login-failure limits between instances over the bus: every quarter second each
/// instance sends what its limiters spent (and reset) as one `internal.rate_limits` event, and applies what
/// the others sent. Costs nothing per request; a limit may be overshot by what other instances let through
/// in the last quarter second plus the bus delay.
public struct RateLimitSync: Service {
    public static let event = "internal.rate_limits"
    static let interval = Duration.milliseconds(250)

    let bus: EventBus
    let limiters: [String: RateLimiter]
    let logger: Logger

    struct Batch: Codable {
        var limiter: String
        var spends: [String: Int]
        var resets: [String]
    }

    public func run() async throws {
        let events = bus.subscribe(types: [Self.event])
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await envelope in events.cancelOnGracefulShutdown() where envelope.origin != bus.origin {
                    guard let batches = try? JSONDecoder().decode([Batch].self, from: Data(envelope.payload.readableBytesView)) else { continue }
                    for batch in batches {
                        guard let limiter = limiters[batch.limiter] else { continue }
                        for key in batch.resets { limiter.applyRemoteReset(key) }
                        for (key, count) in batch.spends { limiter.applyRemote(spent: count, for: key) }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.interval) }
                    let batches = limiters.compactMap { name, limiter -> Batch? in
                        let (spends, resets) = limiter.drainUnsent()
                        return spends.isEmpty && resets.isEmpty ? nil : Batch(limiter: name, spends: spends, resets: resets)
                    }
                    guard !batches.isEmpty, let data = try? JSONEncoder().encode(batches) else { continue }
                    bus.publish(type: Self.event, payload: ByteBuffer(bytes: data), visibility: .nobody)
                }
            }
        }
    }
}
