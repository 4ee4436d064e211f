import HubCore
import HubStore
import HubTestSupport
import Logging
import SQLKit
import Testing

struct CreateWidgets: Migration {
    let name = "0100-test-widgets"
    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("CREATE TABLE widgets (id INTEGER PRIMARY KEY, label TEXT NOT NULL)").run()
    }
}

struct AddWidgetColour: Migration {
    let name = "0101-test-widget-colour"
    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("ALTER TABLE widgets ADD COLUMN colour TEXT").run()
    }
}

struct BrokenMigration: Migration {
    let name = "0102-test-broken"
    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("CREATE TABLE half_done (id INTEGER)").run()
        try await database.raw("THIS IS NOT SQL").run()
    }
}

@Suite struct MigrationTests {
    let logger = Logger(label: "test")

    func withDatabase(_ backend: TestDatabases.Backend, _ body: (HubDatabase) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try HubDatabase.open(try await TestDatabases.make(backend, in: directory), logger: logger)
        do { try await body(database) } catch { await database.shutdown(); throw error }
        await database.shutdown()
    }

    @Test(arguments: TestDatabases.available)
    func migrationsApplyOnceInOrder(backend: TestDatabases.Backend) async throws {
        try await withDatabase(backend) { database in
            let migrator = Migrator(database: database, migrations: CoreMigrations.all + [AddWidgetColour(), CreateWidgets()], logger: logger)
            let first = try await migrator.migrate()
            #expect(first == ["0001-core-event-payloads", "0002-core-leases", "0003-core-instances", "0004-core-event-log", "0100-test-widgets", "0101-test-widget-colour"])
            let second = try await migrator.migrate()
            #expect(second.isEmpty)
            let applied = try await migrator.applied()
            #expect(applied == Set(first))
            try await database.sql.raw("INSERT INTO widgets (id, label, colour) VALUES (1, 'a', 'red')").run()
            let row = try await database.sql.raw("SELECT colour FROM widgets WHERE id = 1").first()
            #expect(try row?.decode(column: "colour", as: String.self) == "red")
        }
    }

    @Test(arguments: TestDatabases.available)
    func aFailedMigrationLeavesNothingBehind(backend: TestDatabases.Backend) async throws {
        try await withDatabase(backend) { database in
            let migrator = Migrator(database: database, migrations: [CreateWidgets(), BrokenMigration()], logger: logger)
            await #expect(throws: (any Error).self) { try await migrator.migrate() }
            let applied = try await migrator.applied()
            #expect(applied == ["0100-test-widgets"])
            // The broken migration's first statement was rolled back with it.
            await #expect(throws: (any Error).self) { try await database.sql.raw("SELECT id FROM half_done").run() }
        }
    }

    @Test(arguments: TestDatabases.available)
    func concurrentMigratorsApplyEachMigrationOnce(backend: TestDatabases.Backend) async throws {
        try await withDatabase(backend) { database in
            let migrations: [any Migration] = CoreMigrations.all + [CreateWidgets(), AddWidgetColour()]
            let results = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<4 {
                    group.addTask { try await Migrator(database: database, migrations: migrations, logger: logger).migrate() }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(results.sorted() == ["0001-core-event-payloads", "0002-core-leases", "0003-core-instances", "0004-core-event-log", "0100-test-widgets", "0101-test-widget-colour"])
        }
    }

    @Test(arguments: TestDatabases.available)
    func transactionsRollBackOnError(backend: TestDatabases.Backend) async throws {
        try await withDatabase(backend) { database in
            try await Migrator(database: database, migrations: [CreateWidgets()], logger: logger).migrate()
            await #expect(throws: TestFailure.self) {
                try await database.transaction { db in
                    try await db.raw("INSERT INTO widgets (id, label) VALUES (1, 'x')").run()
                    throw TestFailure("abort")
                }
            }
            let count = try await database.sql.raw("SELECT COUNT(*) AS n FROM widgets").first()?.decode(column: "n", as: Int.self)
            #expect(count == 0)
            try await database.transaction { db in
                try await db.raw("INSERT INTO widgets (id, label) VALUES (2, 'y')").run()
            }
            let after = try await database.sql.raw("SELECT COUNT(*) AS n FROM widgets").first()?.decode(column: "n", as: Int.self)
            #expect(after == 1)
        }
    }

    @Test func sqliteRunsInWALMode() async throws {
        try await withDatabase(.sqlite) { database in
            let mode = try await database.sql.raw("PRAGMA journal_mode").first()?.decode(column: "journal_mode", as: String.self)
            #expect(mode == "wal")
            let timeout = try await database.sql.raw("PRAGMA busy_timeout").first()?.decode(column: "timeout", as: Int.self)
            #expect(timeout == 10000)
        }
    }
}
