import Foundation
import HubCore
import Synchronization

/// Advisory edit locks: an operator who starts editing a stream takes its lock (`stream_locked`), renews
/// it while editing, and releases it (`stream_unlocked`) or lets it lapse after ``ttl`` seconds. Every
/// instance keeps the same table, fed by the lock events on the bus; the instance that granted a lock is
/// the one that announces its expiry.
public final class StreamLocks: Sendable {
    public struct Lock: Sendable, Equatable {
        public let streamID: Int64
        /// Who holds it: the principal's actor name (`user:ada@example.org`).
        public let holder: String
        public let expiresAt: Double
        /// The origin of the instance that granted it.
        public let origin: String
    }

    public enum Outcome: Sendable, Equatable {
        case granted(Lock)
        case heldBy(Lock)
    }

    public static let ttl: Double = 30
    private let locks = Mutex<[Int64: Lock]>([:])
    let origin: String

    init(origin: String) {
        self.origin = origin
    }

    /// The live lock on a stream, if any.
    public func lock(on streamID: Int64, now: Double = Timestamp.now()) -> Lock? {
        locks.withLock { locks in
            guard let lock = locks[streamID], lock.expiresAt > now else { return nil }
            return lock
        }
    }

    /// Takes or renews the lock for `holder`.
    func acquire(_ streamID: Int64, holder: String, now: Double = Timestamp.now()) -> Outcome {
        locks.withLock { locks in
            if let current = locks[streamID], current.expiresAt > now, current.holder != holder { return .heldBy(current) }
            let lock = Lock(streamID: streamID, holder: holder, expiresAt: now + Self.ttl, origin: origin)
            locks[streamID] = lock
            return .granted(lock)
        }
    }

    /// Releases the lock if `holder` has it; answers whether it did.
    func release(_ streamID: Int64, holder: String) -> Bool {
        locks.withLock { locks in
            guard let current = locks[streamID], current.holder == holder else { return false }
            locks.removeValue(forKey: streamID)
            return true
        }
    }

    /// Drops the lock whatever its holder (the stream was deleted).
    func drop(_ streamID: Int64) -> Lock? {
        locks.withLock { $0.removeValue(forKey: streamID) }
    }

    /// Applies a lock event from another instance.
    func apply(locked lock: Lock) {
        locks.withLock { $0[lock.streamID] = lock }
    }

    func apply(unlocked streamID: Int64) {
        _ = locks.withLock { $0.removeValue(forKey: streamID) }
    }

    /// Removes lapsed locks; answers those this instance granted (it announces their expiry).
    func expire(now: Double = Timestamp.now()) -> [Lock] {
        locks.withLock { locks in
            let lapsed = locks.values.filter { $0.expiresAt <= now }
            for lock in lapsed { locks.removeValue(forKey: lock.streamID) }
            return lapsed.filter { $0.origin == origin }
        }
    }

    /// Every live lock, for a client that just connected.
    func all(now: Double = Timestamp.now()) -> [Lock] {
        locks.withLock { $0.values.filter { $0.expiresAt > now }.sorted { $0.streamID < $1.streamID } }
    }
}

extension StreamLocks.Lock {
    var lockedPayload: String {
        JSONText.object([
            ("stream_id", .int(Int(streamID))), ("locked_by", .string(holder)), ("expires_at", .string(Timestamp.iso8601(expiresAt))),
            ("expires_at_unix", .double(expiresAt)), ("origin", .string(origin)),
        ])
    }
}
