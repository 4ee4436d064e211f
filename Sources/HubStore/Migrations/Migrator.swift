import Foundation
import Logging
import SQLKit

/// Applies pending migrations. Safe to run from several instances at once: on PostgreSQL an advisory lock
/// serialises them, on SQLite the write transaction does.
public struct Migrator: Sendable {
    public let database: HubDatabase
    public let migrations: [any Migration]
    let logger: Logger

    public init(database: HubDatabase, migrations: [any Migration], logger: Logger) {
        self.database = database
        self.migrations = migrations.sorted { $0.name < $1.name }
        self.logger = logger
        precondition(Set(migrations.map(\.name)).count == migrations.count, "migration names must be unique")
    }

    /// Names of the migrations already applied.
    public func applied() async throws -> Set<String> {
        try await ensureTable()
        let rows = try await database.sql.raw("SELECT name FROM streamhub_migrations").all()
        return Set(try rows.map { try $0.decode(column: "name", as: String.self) })
    }

    /// Applies every pending migration and answers the names applied now.
    @discardableResult
    public func migrate() async throws -> [String] {
        try await ensureTable()
        var appliedNow: [String] = []
        for migration in migrations {
            let kind = database.kind
            let ran = try await database.transaction { db -> Bool in
                if kind == .postgres {
                    try await db.raw("SELECT pg_advisory_xact_lock(\(unsafeRaw: Self.lockKey))").run()
                }
                let existing = try await db.raw("SELECT name FROM streamhub_migrations WHERE name = \(bind: migration.name)").first()
                guard existing == nil else { return false }
                try await migration.prepare(on: db, kind: kind)
                try await db.raw("INSERT INTO streamhub_migrations (name, applied_at) VALUES (\(bind: migration.name), \(bind: Date().timeIntervalSince1970))").run()
                return true
            }
            if ran {
                appliedNow.append(migration.name)
                logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
            }
        }
        return appliedNow
    }

    private func ensureTable() async throws {
        let kind = database.kind
        // Concurrent CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL; the lock serialises it.
        try await database.transaction { db in
            if kind == .postgres { try await db.raw("SELECT pg_advisory_xact_lock(\(unsafeRaw: Self.lockKey))").run() }
            try await db.raw("CREATE TABLE IF NOT EXISTS streamhub_migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)").run()
        }
    }

    static let lockKey = "7270312501"
}
