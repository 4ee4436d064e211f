import Foundation
import HubCore
import HubStore
import Realtime
import Registry
import SQLKit

/// Overlay keys: 32 random bytes as 64 hex characters, per community. Only SHA-256 hashes are stored
/// (indexed, so validation is one lookup) and compared in constant time; the key itself is shown once,
/// on create or rotate. Valid: the current key, or the previous one within the grace period after a
/// rotation — nothing else, so a key rotated twice is dead at once. Answers are kept for a few seconds
/// (``OverlayKeyCache``), and forgotten on every rotation.
public struct OverlayKeys: Sendable {
    public struct Validation: Sendable, Equatable {
        public let communityID: Int64
        public let inGracePeriod: Bool
        /// When a rotated-out key stops working (the end of its grace period); `nil` for the current key.
        public var validUntil: Double? = nil
        /// The key's stored hash: identifies the key without holding it.
        public var keyHash: String = ""
    }

    public struct Status: Sendable {
        public let communityID: Int64
        public let currentPrefix: String
        public let previousPrefix: String?
        public let rotatedAt: Double?
        public let createdAt: Double
        public let previousValidUntil: Double?
        public let rotateEvery: Double?
        public let nextRotationAt: Double?

        var json: String {
            func time(_ value: Double?) -> JSONText.Value { value.map { .string(Timestamp.iso8601($0)) } ?? .null }
            return JSONText.object([
                ("community_id", .int(Int(communityID))), ("current_prefix", .string(currentPrefix)),
                ("previous_prefix", previousPrefix.map(JSONText.Value.string) ?? .null), ("rotated_at", time(rotatedAt)),
                ("previous_valid_until", time(previousValidUntil)), ("created_at", time(createdAt)),
                ("rotate_every_seconds", rotateEvery.map { .int(Int($0)) } ?? .null), ("next_rotation_at", time(nextRotationAt)),
            ])
        }
    }

    let database: HubDatabase
    let clock: any WallClock
    /// Seconds the previous key stays valid after a rotation.
    public let gracePeriod: Double
    let cache: OverlayKeyCache

    /// - Parameter cacheTTL: seconds a validation's answer is kept (see ``OverlayKeyCache``).
    public init(database: HubDatabase, clock: any WallClock = SystemWallClock(), gracePeriod: Double = 300, cacheTTL: Double = 5) {
        self.database = database
        self.clock = clock
        self.gracePeriod = gracePeriod
        self.cache = OverlayKeyCache(ttl: cacheTTL)
    }

    var now: Double { clock.now().timeIntervalSince1970 }

    /// A new key: 32 random bytes as 64 lowercase hex characters.
    static func newKey() -> String { RandomKey.hex(bytes: 32) }

    static func hash(_ key: String) -> String { RandomKey.sha256(key) }

    /// What may be logged of a key.
    public static func prefix(_ key: String) -> String { String(key.prefix(8)) }

    /// Whether `key` has the shape of an overlay key (64 hex characters).
    static func isWellFormed(_ key: String) -> Bool {
        key.utf8.count == 64 && key.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
    }

    /// The community a key opens, or `nil`.
    public func validate(_ key: String) async throws -> Validation? {
        guard Self.isWellFormed(key) else { return nil }
        let hash = Self.hash(key.lowercased())
        return try await cache.validation(for: hash, now: now) { try await lookUp(hash) }
    }

    /// Forgets the kept answers: a rotation happened (here or on another instance).
    func forgetValidations() {
        cache.forgetAll()
    }

    private func lookUp(_ hash: String) async throws -> Validation? {
        let rows = try await database.sql.raw("""
            SELECT community_id, current_hash, previous_hash, rotated_at FROM overlay_keys
            WHERE current_hash = \(bind: hash) OR previous_hash = \(bind: hash)
            """).all()
        let now = self.now
        for row in rows {
            let community = try row.decode(column: "community_id", as: Int64.self)
            if ConstantTime.equals(try row.decode(column: "current_hash", as: String.self), hash) {
                return Validation(communityID: community, inGracePeriod: false, keyHash: hash)
            }
            if let previous = try row.decode(column: "previous_hash", as: String?.self), ConstantTime.equals(previous, hash),
               let rotated = try row.decode(column: "rotated_at", as: Double?.self), now < rotated + gracePeriod {
                return Validation(communityID: community, inGracePeriod: true, validUntil: rotated + gracePeriod, keyHash: hash)
            }
        }
        return nil
    }

    /// Creates the community's first key (409 when it has one) and answers it.
    public func create(for community: Int64, on db: (any SQLDatabase)? = nil) async throws -> String {
        let db = db ?? database.sql
        if try await db.raw("SELECT community_id FROM overlay_keys WHERE community_id = \(bind: community)").first() != nil {
            throw HubError.conflict("community \(community) already has an overlay key; rotate it instead", code: "key_exists")
        }
        let key = Self.newKey()
        try await db.raw("""
            INSERT INTO overlay_keys (community_id, current_hash, current_prefix, created_at)
            VALUES (\(bind: community), \(bind: Self.hash(key)), \(bind: Self.prefix(key)), \(bind: now))
            """).run()
        return key
    }

    /// Rotates: the current key becomes the previous one (valid for the grace period), a new key is current.
    public func rotate(_ community: Int64) async throws -> String {
        try await rotation(community).key
    }

    /// What a rotation changed: the new key, and the hashes that open the community from now on.
    struct Rotation: Sendable {
        let community: Int64
        let key: String
        let currentHash: String
        let previousHash: String
        let previousValidUntil: Double
    }

    func rotation(_ community: Int64) async throws -> Rotation {
        guard let rotation = try await rotation(community, onlyIfDue: false) else {
            throw HubError.notFound("community \(community) has no overlay key yet; create one")
        }
        return rotation
    }

    /// A scheduled rotation: only while the key is still due, so two instances (or two runs) that find it due
    /// at once rotate it once — a second rotation would retire the key OBS sources still use, with no grace.
    func scheduledRotation(_ community: Int64) async throws -> Rotation? {
        try await rotation(community, onlyIfDue: true)
    }

    private func rotation(_ community: Int64, onlyIfDue: Bool) async throws -> Rotation? {
        let key = Self.newKey()
        let now = self.now
        let kind = database.kind
        // Forgotten before and after: a lookup made while the transaction runs is not kept either.
        cache.forgetAll()
        defer { cache.forgetAll() }
        return try await database.transaction { db in
            // The row is locked (PostgreSQL; SQLite has one writer): a second rotation waits, then sees the
            // row as the first left it — no longer due.
            let lock: SQLQueryString = kind == .postgres ? " FOR UPDATE" : ""
            let due: SQLQueryString = onlyIfDue ? " AND next_rotation_at IS NOT NULL AND next_rotation_at <= \(bind: now)" : ""
            guard let row = try await db.raw("SELECT current_hash, current_prefix, rotate_every FROM overlay_keys WHERE community_id = \(bind: community)" + due + lock).first() else {
                return nil
            }
            let next = try row.decode(column: "rotate_every", as: Double?.self).map { now + $0 }
            try await db.raw("""
                UPDATE overlay_keys SET previous_hash = \(bind: try row.decode(column: "current_hash", as: String.self)),
                    previous_prefix = \(bind: try row.decode(column: "current_prefix", as: String.self)),
                    current_hash = \(bind: Self.hash(key)), current_prefix = \(bind: Self.prefix(key)), rotated_at = \(bind: now),
                    next_rotation_at = \(bind: next)
                WHERE community_id = \(bind: community)
                """).run()
            return Rotation(community: community, key: key, currentHash: Self.hash(key),
                            previousHash: try row.decode(column: "current_hash", as: String.self), previousValidUntil: now + gracePeriod)
        }
    }

    /// Sets or clears scheduled rotation.
    public func schedule(_ community: Int64, every seconds: Double?) async throws {
        let next = seconds.map { now + $0 }
        let rows = try await database.sql.raw("""
            UPDATE overlay_keys SET rotate_every = \(bind: seconds), next_rotation_at = \(bind: next) WHERE community_id = \(bind: community) RETURNING community_id
            """).all()
        guard !rows.isEmpty else { throw HubError.notFound("community \(community) has no overlay key yet; create one") }
    }

    /// Communities whose scheduled rotation is due.
    func due() async throws -> [Int64] {
        try await database.sql.raw("SELECT community_id FROM overlay_keys WHERE next_rotation_at IS NOT NULL AND next_rotation_at <= \(bind: now)")
            .all().map { try $0.decode(column: "community_id", as: Int64.self) }
    }

    public func status(_ community: Int64) async throws -> Status? {
        guard let row = try await database.sql.raw("""
            SELECT community_id, current_prefix, previous_prefix, rotated_at, created_at, rotate_every, next_rotation_at
            FROM overlay_keys WHERE community_id = \(bind: community)
            """).first() else { return nil }
        let rotated = try row.decode(column: "rotated_at", as: Double?.self)
        let previous = try row.decode(column: "previous_prefix", as: String?.self)
        let validUntil = rotated.map { $0 + gracePeriod }
        return Status(
            communityID: community, currentPrefix: try row.decode(column: "current_prefix", as: String.self),
            previousPrefix: previous, rotatedAt: rotated, createdAt: try row.decode(column: "created_at", as: Double.self),
            previousValidUntil: previous == nil ? nil : validUntil,
            rotateEvery: try row.decode(column: "rotate_every", as: Double?.self), nextRotationAt: try row.decode(column: "next_rotation_at", as: Double?.self))
    }
}

extension OverlayKeys.Validation {
    /// The identity an overlay WebSocket routes by: the community's audience, closed when a rotated-out key's
    /// grace period ends or the key is rotated out twice.
    var channelIdentity: ChannelIdentity {
        ChannelIdentity(audience: .community(communityID), subject: "overlay:\(communityID)", tokenID: keyHash, expiresAt: validUntil,
                        name: "overlay key of community \(communityID)")
    }
}
