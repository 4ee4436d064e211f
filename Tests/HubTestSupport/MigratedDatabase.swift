import HubCore
import HubStore
import Logging

extension TestDatabases {
    /// Runs `body` on a fresh database of `backend` with `migrations` applied, handing it the database and its
    /// configuration (for a second pool on it, as another instance would have); the database is shut down
    /// and its directory removed whatever happens.
    public static func withMigrated(_ backend: Backend, _ migrations: [any Migration],
                                    _ body: (HubDatabase, HubConfiguration.Database) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let configuration = try await make(backend, in: directory)
        let database = try HubDatabase.open(configuration, logger: Logger(label: "test"))
        do {
            try await Migrator(database: database, migrations: migrations, logger: Logger(label: "test")).migrate()
            try await body(database, configuration)
        } catch {
            await database.shutdown()
            throw error
        }
        await database.shutdown()
    }
}
