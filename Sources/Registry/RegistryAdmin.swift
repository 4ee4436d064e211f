import Foundation
import HubCore
import HubStore

/// What the `streamhub user …` and `streamhub apikey …` commands do, with the same validation and audit
/// entries as the REST API (the actor is `cli:<login name>`).
public enum RegistryAdmin {
    static var cliActor: String { "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "operator") }

    public static func createUser(email: String, password: String, role roleLabel: String, bcryptCost: Int, database: HubDatabase) async throws -> String {
        guard let role = Role(label: roleLabel) else { throw HubError.validation("role must be \(Role.choices)") }
        _ = try AccountStore.validateEmail(email)
        try Passwords.validate(password)
        let hash = try await Passwords(cost: UInt8(bcryptCost)).hash(password)
        let user = try await database.transaction { db in
            let user = try await AccountStore.createUser(email: email, passwordHash: hash, role: role, on: db)
            try await AuditLog.record(.init(actor: cliActor, action: "create", entity: "user", entityID: String(user.id), requestID: nil),
                                      before: nil, after: ["email": .string(user.email), "role": .string(role.rawValue)], on: db)
            return user
        }
        return "created user \(user.id) \(user.email) (\(user.role.rawValue))"
    }

    public static func listUsers(database: HubDatabase) async throws -> [String] {
        try await AccountStore.users(on: database.sql, limit: 100_000).map { user in
            "\(user.id)\t\(user.email)\t\(user.role.rawValue)\(user.disabled ? "\tdisabled" : "")\t\(Timestamp.iso8601(user.createdAt))"
        }
    }

    /// Creates an API key and answers it; it is shown this once.
    public static func createAPIKey(name: String, role roleLabel: String, database: HubDatabase) async throws -> (id: Int64, key: String) {
        guard let role = Role(label: roleLabel) else { throw HubError.validation("role must be \(Role.choices)") }
        let (record, key) = try await database.transaction { db in
            let created = try await AccountStore.createAPIKey(name: name, role: role, on: db)
            try await AuditLog.record(.init(actor: cliActor, action: "create", entity: "api_key", entityID: String(created.0.id), requestID: nil),
                                      before: nil, after: ["name": .string(created.0.name), "role": .string(role.rawValue)], on: db)
            return created
        }
        return (record.id, key)
    }

    public static func listAPIKeys(database: HubDatabase) async throws -> [String] {
        try await AccountStore.apiKeys(on: database.sql).map { key in
            "\(key.id)\t\(key.name)\t\(key.role.rawValue)\t\(key.prefix)…\t\(key.revoked ? "revoked" : "active")\t\(key.lastUsedAt.map(Timestamp.iso8601) ?? "never used")"
        }
    }

    /// Revokes the key with this id, or every key with this name; answers how many.
    public static func revokeAPIKey(_ idOrName: String, database: HubDatabase) async throws -> Int {
        try await database.transaction { db in
            let revoked = try await AccountStore.revokeAPIKey(idOrName: idOrName, on: db)
            for key in revoked {
                try await AuditLog.record(.init(actor: cliActor, action: "revoke", entity: "api_key", entityID: String(key.id), requestID: nil),
                                          before: ["revoked": .bool(false)], after: ["revoked": .bool(true)], on: db)
            }
            return revoked.count
        }
    }
}
