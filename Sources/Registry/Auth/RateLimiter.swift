import Foundation
import Synchronization

/// Token buckets by key: each key may spend `limit` requests per `window`, refilled continuously. Kept in
/// memory per instance (behind a load balancer each instance enforces its own share).
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    public let limit: Int
    public let window: Double
    private let buckets = Mutex<[String: Bucket]>([:])
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
            return nil
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
