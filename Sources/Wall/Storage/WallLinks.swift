import Foundation
import HubCore
import HubStore
import Registry
import SQLKit

/// Invite and display links of walls: `shw_` + 32 random bytes in hex, shown once, stored as a SHA-256 hash
/// (indexed, compared in constant time). A link is a credential scoped to one wall:
/// - an **operator** invite reads like a viewer and may change that wall's cells and audio;
/// - a **viewer** invite reads like a viewer and changes nothing;
/// - a **display** link may watch that wall only (its state and its `wall_changed` events).
/// Invites expire (default 24 h) and may carry a use limit; display links live until revoked.
public struct WallLinks: Sendable {
    public static let prefix = "shw_"

    public enum Kind: String, Sendable { case invite, display }
    public enum Access: String, Sendable, CaseIterable { case `operator`, viewer, display }

    public struct Link: Sendable {
        public let id: Int64
        public let wall: String
        public let kind: Kind
        public let access: Access
        public let label: String?
        public let prefix: String
        public let expiresAt: Double?
        public let maxUses: Int?
        public let uses: Int
        public let revokedAt: Double?
        public let createdBy: String?
        public let createdAt: Double
        public let lastUsedAt: Double?

        static let columns = "id, wall, kind, access, label, token_hash, prefix, expires_at, max_uses, uses, revoked_at, created_by, created_at, last_used_at"

        init(row: any SQLRow) throws {
            id = try row.decode(column: "id", as: Int64.self)
            wall = try row.decode(column: "wall", as: String.self)
            kind = Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .invite
            access = Access(rawValue: try row.decode(column: "access", as: String.self)) ?? .viewer
            label = try row.decode(column: "label", as: String?.self)
            prefix = try row.decode(column: "prefix", as: String.self)
            expiresAt = try row.decode(column: "expires_at", as: Double?.self)
            maxUses = try row.decode(column: "max_uses", as: Int?.self)
            uses = try row.decode(column: "uses", as: Int.self)
            revokedAt = try row.decode(column: "revoked_at", as: Double?.self)
            createdBy = try row.decode(column: "created_by", as: String?.self)
            createdAt = try row.decode(column: "created_at", as: Double.self)
            lastUsedAt = try row.decode(column: "last_used_at", as: Double?.self)
        }

        public func isValid(at now: Double) -> Bool {
            revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
        }

        /// The page this link opens.
        public func url(token: String) -> String {
            (kind == .display ? "/wall/\(wall)" : "/wall/\(wall)/control") + "?token=" + token
        }

        public func json(token: String? = nil) -> String {
            func time(_ value: Double?) -> JSONText.Value { Timestamp.jsonValue(value) }
            var fields: [(String, JSONText.Value)] = [
                ("id", .int(Int(id))), ("wall", .string(wall)), ("kind", .string(kind.rawValue)), ("role", .string(access.rawValue)),
                ("label", label.map(JSONText.Value.string) ?? .null), ("prefix", .string(prefix)), ("expires_at", time(expiresAt)),
                ("max_uses", maxUses.map { .int($0) } ?? .null), ("uses", .int(uses)), ("revoked", .bool(revokedAt != nil)),
                ("created_by", createdBy.map(JSONText.Value.string) ?? .null), ("created_at", time(createdAt)), ("last_used_at", time(lastUsedAt)),
            ]
            if let token { fields += [("token", .string(token)), ("url", .string(url(token: token)))] }
            return JSONText.object(fields)
        }
    }

    let database: HubDatabase

    /// Creates a link and answers it with its token (the only time the token is shown).
    public func create(wall: String, kind: Kind, access: Access, label: String?, expiresAt: Double?, maxUses: Int?,
                       by actor: String) async throws -> (Link, String) {
        let token = Self.prefix + RandomKey.hex(bytes: 32)
        let now = Timestamp.now()
        guard let row = try await database.sql.raw("""
            INSERT INTO wall_links (wall, kind, access, label, token_hash, prefix, expires_at, max_uses, uses, created_by, created_at)
            VALUES (\(bind: wall), \(bind: kind.rawValue), \(bind: access.rawValue), \(bind: label), \(bind: RandomKey.sha256(token)),
                    \(bind: String(token.prefix(12))), \(bind: expiresAt), \(bind: maxUses), 0, \(bind: actor), \(bind: now))
            RETURNING \(unsafeRaw: Link.columns)
            """).first() else { throw HubError.internalError() }
        return (try Link(row: row), token)
    }

    public func list(wall: String) async throws -> [Link] {
        try await database.sql.raw("SELECT \(unsafeRaw: Link.columns) FROM wall_links WHERE wall = \(bind: wall) ORDER BY id").all().map(Link.init(row:))
    }

    /// Revokes a link of `wall`; answers it, or `nil` when the wall has no such link.
    public func revoke(_ id: Int64, wall: String) async throws -> Link? {
        let now = Timestamp.now()
        try await database.sql.raw("""
            UPDATE wall_links SET revoked_at = \(bind: now) WHERE id = \(bind: id) AND wall = \(bind: wall) AND revoked_at IS NULL
            """).run()
        return try await database.sql.raw("SELECT \(unsafeRaw: Link.columns) FROM wall_links WHERE id = \(bind: id) AND wall = \(bind: wall)")
            .first().map(Link.init(row:))
    }

    /// The valid link behind `token`, or `nil` (malformed, unknown, expired or revoked).
    public func link(for token: String, now: Double = Timestamp.now()) async throws -> Link? {
        guard token.utf8.count == Self.prefix.utf8.count + 64, token.hasPrefix(Self.prefix) else { return nil }
        let hash = RandomKey.sha256(token)
        guard let row = try await database.sql.raw("SELECT \(unsafeRaw: Link.columns) FROM wall_links WHERE token_hash = \(bind: hash)").first(),
              ConstantTime.equals(try row.decode(column: "token_hash", as: String.self), hash)
        else { return nil }
        let link = try Link(row: row)
        return link.isValid(at: now) ? link : nil
    }

    /// Counts one use of an invite (a page session starting from it): refused once `max_uses` is reached.
    /// Answers the link after the use, or `nil` when the token is not a valid link or has no uses left.
    public func use(_ token: String, now: Double = Timestamp.now()) async throws -> Link? {
        guard let link = try await link(for: token, now: now) else { return nil }
        let rows = try await database.sql.raw("""
            UPDATE wall_links SET uses = uses + 1, last_used_at = \(bind: now)
            WHERE id = \(bind: link.id) AND (max_uses IS NULL OR uses < max_uses) RETURNING id
            """).all()
        guard !rows.isEmpty else { return nil }
        return try await self.link(for: token, now: now)
    }

    /// The principal a link stands for: invites read like a viewer (role `viewer`), displays have no role
    /// at all (so every route but their wall refuses them).
    static func principal(for link: Link) -> Principal {
        Principal(kind: .wallLink, id: String(link.id), role: link.access == .display ? "display" : Role.viewer.rawValue,
                  name: "\(link.kind.rawValue) \(link.id) of \(link.wall)",
                  scope: .init(wall: link.wall, access: link.access.rawValue, expiresAt: link.expiresAt))
    }
}
