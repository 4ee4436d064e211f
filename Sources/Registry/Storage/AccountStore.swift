import Foundation
import HubCore
import HubStore
import SQLKit

/// A user account as the API shows it (never the password hash).
public struct UserRecord: Sendable, Equatable {
    public var id: Int64
    public var email: String
    public var role: Role
    public var disabled: Bool
    public var createdAt: Double
    public var updatedAt: Double

    static let columns = "id, email, role, disabled, created_at, updated_at"

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int64.self)
        email = try row.decode(column: "email", as: String.self)
        role = Role(rawValue: try row.decode(column: "role", as: String.self)) ?? .viewer
        disabled = try row.decode(column: "disabled", as: Bool.self)
        createdAt = try row.decode(column: "created_at", as: Double.self)
        updatedAt = try row.decode(column: "updated_at", as: Double.self)
    }

    var json: String {
        JSONText.object([
            ("id", .int(Int(id))), ("email", .string(email)), ("role", .string(role.rawValue)), ("disabled", .bool(disabled)),
            ("created_at", .string(Timestamp.iso8601(createdAt))), ("updated_at", .string(Timestamp.iso8601(updatedAt))),
        ])
    }
}

/// An API key's record (never the key itself; only its hash is stored).
public struct APIKeyRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var prefix: String
    public var role: Role
    public var createdAt: Double
    public var lastUsedAt: Double?
    public var revoked: Bool

    static let columns = "id, name, key_prefix, role, created_at, last_used_at, revoked"

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int64.self)
        name = try row.decode(column: "name", as: String.self)
        prefix = try row.decode(column: "key_prefix", as: String.self)
        role = Role(rawValue: try row.decode(column: "role", as: String.self)) ?? .viewer
        createdAt = try row.decode(column: "created_at", as: Double.self)
        lastUsedAt = try row.decode(column: "last_used_at", as: Double?.self)
        revoked = try row.decode(column: "revoked", as: Bool.self)
    }

    var json: String {
        JSONText.object([
            ("id", .int(Int(id))), ("name", .string(name)), ("prefix", .string(prefix)), ("role", .string(role.rawValue)),
            ("created_at", .string(Timestamp.iso8601(createdAt))), ("last_used_at", Timestamp.jsonValue(lastUsedAt)),
            ("revoked", .bool(revoked)),
        ])
    }
}

/// Users and API keys: the SQL, plus the one place that knows how keys and emails are normalised.
public enum AccountStore {
    /// The unique form of an email: trimmed and lowercased.
    static func emailKey(_ email: String) -> String { email.trimmingCharacters(in: .whitespaces).lowercased() }

    static func validateEmail(_ email: String) throws -> String {
        let trimmed = email.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard trimmed.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
              !trimmed.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "\"" || $0.unicodeScalars.contains { $0.value < 0x20 } })
        else { throw HubError.validation("email must be an address like name@example.org (at most 254 characters)") }
        return trimmed
    }

    public static func createUser(email: String, passwordHash: String, role: Role, on db: any SQLDatabase, now: Double = Timestamp.now()) async throws -> UserRecord {
        let email = try validateEmail(email)
        let key = emailKey(email)
        if try await db.raw("SELECT id FROM users WHERE email_key = \(bind: key)").first() != nil {
            throw HubError.conflict("a user with email \(email) already exists", code: "email_taken")
        }
        guard let row = try await db.raw("""
            INSERT INTO users (email, email_key, password_hash, role, disabled, created_at, updated_at)
            VALUES (\(bind: email), \(bind: key), \(bind: passwordHash), \(bind: role.rawValue), \(bind: false), \(bind: now), \(bind: now))
            RETURNING \(unsafeRaw: UserRecord.columns)
            """).first() else { throw HubError.internalError() }
        return try UserRecord(row: row)
    }

    public static func users(on db: any SQLDatabase, limit: Int = 1000, offset: Int = 0) async throws -> [UserRecord] {
        try await db.raw("SELECT \(unsafeRaw: UserRecord.columns) FROM users ORDER BY id LIMIT \(bind: limit) OFFSET \(bind: offset)").all().map(UserRecord.init(row:))
    }

    public static func userCount(on db: any SQLDatabase) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM users").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    static func user(id: Int64, on db: any SQLDatabase) async throws -> UserRecord? {
        try await db.raw("SELECT \(unsafeRaw: UserRecord.columns) FROM users WHERE id = \(bind: id)").first().map(UserRecord.init(row:))
    }

    /// The user with this email and their password hash.
    static func credentials(email: String, on db: any SQLDatabase) async throws -> (UserRecord, String)? {
        guard let row = try await db.raw("SELECT \(unsafeRaw: UserRecord.columns), password_hash FROM users WHERE email_key = \(bind: emailKey(email))").first() else {
            return nil
        }
        return (try UserRecord(row: row), try row.decode(column: "password_hash", as: String.self))
    }

    /// A new API key: `shk_` and 64 hex characters (256 random bits). Only its SHA-256 is stored.
    public static func createAPIKey(name: String, role: Role, on db: any SQLDatabase, now: Double = Timestamp.now()) async throws -> (APIKeyRecord, String) {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(name.count), !name.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw HubError.validation("name must be 1 to 100 characters")
        }
        let key = "shk_" + RandomKey.hex(bytes: 32)
        guard let row = try await db.raw("""
            INSERT INTO api_keys (name, key_hash, key_prefix, role, created_at, revoked)
            VALUES (\(bind: name), \(bind: RandomKey.sha256(key)), \(bind: String(key.prefix(12))), \(bind: role.rawValue), \(bind: now), \(bind: false))
            RETURNING \(unsafeRaw: APIKeyRecord.columns)
            """).first() else { throw HubError.internalError() }
        return (try APIKeyRecord(row: row), key)
    }

    public static func apiKeys(on db: any SQLDatabase) async throws -> [APIKeyRecord] {
        try await db.raw("SELECT \(unsafeRaw: APIKeyRecord.columns) FROM api_keys ORDER BY id").all().map(APIKeyRecord.init(row:))
    }

    /// Revokes by id or by name; answers the revoked keys.
    @discardableResult
    public static func revokeAPIKey(idOrName: String, on db: any SQLDatabase) async throws -> [APIKeyRecord] {
        let rows: [any SQLRow]
        if let id = Int64(idOrName) {
            rows = try await db.raw("UPDATE api_keys SET revoked = \(bind: true) WHERE id = \(bind: id) RETURNING \(unsafeRaw: APIKeyRecord.columns)").all()
        } else {
            rows = try await db.raw("UPDATE api_keys SET revoked = \(bind: true) WHERE name = \(bind: idOrName) RETURNING \(unsafeRaw: APIKeyRecord.columns)").all()
        }
        return try rows.map(APIKeyRecord.init(row:))
    }

    static func apiKey(hash: String, on db: any SQLDatabase) async throws -> APIKeyRecord? {
        try await db.raw("SELECT \(unsafeRaw: APIKeyRecord.columns), key_hash FROM api_keys WHERE key_hash = \(bind: hash)").first().flatMap { row in
            // The index found the row; compare the stored hash in constant time all the same.
            guard let stored = try? row.decode(column: "key_hash", as: String.self), ConstantTime.equals(stored, hash) else { return nil }
            return try APIKeyRecord(row: row)
        }
    }
}
