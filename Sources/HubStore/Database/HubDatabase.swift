@preconcurrency import AsyncKit
import Foundation
import HubCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit

/// The database every module stores into: SQLite (the embedded default) or PostgreSQL (scale-out).
///
/// Queries go through ``sql``; anything that must be atomic goes through ``transaction(_:)``. Modules
/// write portable SQL and branch on ``kind`` only where the two dialects truly differ.
public final class HubDatabase: Sendable {
    /// Which engine is behind the database.
    public enum Kind: String, Sendable {
        case sqlite, postgres
    }

    public let kind: Kind
    /// The pooled database for queries.
    public let sql: any SQLDatabase
    /// For read-only queries on hot paths. On SQLite, a separate pool of query-only connections (one per
    /// event loop; WAL lets them read while the writer writes); on PostgreSQL, the same pool as ``sql``.
    public let reader: any SQLDatabase
    /// For PostgreSQL: the connection settings, used by the backplane's dedicated connections.
    public let postgresConfiguration: PostgresConnection.Configuration?
    private let shutdownPool: @Sendable () async throws -> Void
    /// Whether this instance holds the maintenance lease: the jobs that must run on one instance at a time
    /// ask it before each run (kept up to date by ``MaintenanceLease``).
    public let maintenance = MaintenanceGate()
    let logger: Logger
    private let groupCommit: GroupCommit

    private init(kind: Kind, sql: any SQLDatabase, reader: (any SQLDatabase)? = nil, postgresConfiguration: PostgresConnection.Configuration?,
                 logger: Logger, metrics: any MetricsFactory, shutdown: @escaping @Sendable () async throws -> Void) {
        self.groupCommit = GroupCommit(metrics: metrics)
        self.kind = kind
        self.sql = sql
        self.reader = reader ?? sql
        self.postgresConfiguration = postgresConfiguration
        self.logger = logger
        self.shutdownPool = shutdown
    }

    /// Opens (and for SQLite, creates) the configured database. Connections are made lazily, so this
    /// succeeds even while a PostgreSQL server is briefly unreachable; ``ping()`` tells whether it is up.
    public static func open(
        _ database: HubConfiguration.Database,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        metrics: (any MetricsFactory)? = nil
    ) throws -> HubDatabase {
        let metrics = metrics ?? MetricsSystem.factory
        switch database {
        case .sqlite(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            // SQLite has a single writer; one connection (on one event loop) serialises every statement, so
            // transactions never wait on each other's locks inside NIO's small blocking thread pool.
            let source = TunedSQLiteSource(path: path)
            let pool = EventLoopGroupConnectionPool(
                source: source, maxConnectionsPerEventLoop: 1, requestTimeout: .seconds(30), logger: logger, on: eventLoopGroup.next())
            let sql = PooledSQLDatabase(pool: pool, makeSQL: { $0.sql() }, dialect: SQLiteDialect(), logger: logger)
            let readPool = EventLoopGroupConnectionPool(
                source: TunedSQLiteSource(path: path, readOnly: true), maxConnectionsPerEventLoop: 1, requestTimeout: .seconds(30),
                logger: logger, on: eventLoopGroup)
            let reader = PooledSQLDatabase(pool: readPool, makeSQL: { $0.sql() }, dialect: SQLiteDialect(), logger: logger)
            return HubDatabase(kind: .sqlite, sql: sql, reader: reader, postgresConfiguration: nil, logger: logger, metrics: metrics) {
                try await readPool.shutdownAsync()
                try await pool.shutdownAsync()
            }
        case .postgres(let url):
            let configuration = try SQLPostgresConfiguration(url: url)
            let source = PostgresConnectionSource(sqlConfiguration: configuration)
            let pool = EventLoopGroupConnectionPool(
                source: source, maxConnectionsPerEventLoop: 4, requestTimeout: .seconds(5), logger: logger, on: eventLoopGroup)
            let sql = PooledSQLDatabase(pool: pool, makeSQL: { $0.sql(queryLogLevel: .trace) }, dialect: PostgresDialect(), logger: logger,
                                        guardsClosedConnections: true)
            return HubDatabase(kind: .postgres, sql: sql, postgresConfiguration: configuration.coreConfiguration, logger: logger, metrics: metrics) {
                try await pool.shutdownAsync()
            }
        }
    }

    /// Runs `body` in one transaction on one connection: committed when it returns, rolled back when it throws.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let kind = self.kind
        return try await sql.withSession { session in
            try await session.raw(kind == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN").run()
            do {
                let result = try await body(session)
                try await session.raw("COMMIT").run()
                return result
            } catch {
                try? await session.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    /// Runs a small write transaction: like ``transaction(_:)``, but on SQLite writes that arrive while
    /// another runs share the next transaction (see ``GroupCommit``), which multiplies what SQLite's single
    /// writer commits per second. `body` may throw a ``HubError`` only before it writes anything; such an
    /// error fails this write alone. On PostgreSQL, where transactions run side by side, it is
    /// ``transaction(_:)``.
    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        // Measured with POST /streams: group commit lifts SQLite from ~970 to ~1,600 writes/s, but on
        // PostgreSQL one batch at a time through one connection (~720/s) loses to transactions on the
        // pool's connections side by side (~1,100/s).
        switch kind {
        case .sqlite: try await groupCommit.run(on: self, body)
        case .postgres: try await transaction(body)
        }
    }

    /// SQLite's group commit so far: transactions run by ``write(_:)`` and the writes in them (a mean batch
    /// size above 1 means writes shared transactions). Also on `/metrics` as `streamhub_db_write_batches_total`
    /// and `streamhub_db_batched_writes_total`.
    public var groupCommitStats: (batches: Int, writes: Int) { groupCommit.stats }

    /// Checks the database answers within `timeout`.
    public func ping(timeout: Duration = .seconds(3)) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.sql.raw("SELECT 1").run() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw HubError.unavailable("the database did not answer within \(timeout)")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Closes every connection. Call once, after everything that uses the database has stopped.
    public func shutdown() async {
        do { try await shutdownPool() } catch { logger.debug("database pool shutdown: \(error)") }
    }
}

/// Opens SQLite connections in WAL mode with a busy timeout, so readers never block the writer and
/// concurrent writers wait for each other instead of failing.
struct TunedSQLiteSource: ConnectionPoolSource {
    let path: String
    var readOnly = false

    func makeConnection(logger: Logger, on eventLoop: any EventLoop) -> EventLoopFuture<SQLiteConnection> {
        SQLiteConnection.open(storage: .file(path: path), threadPool: .singleton, logger: logger, on: eventLoop)
            .flatMap { connection in
                let pragmas = readOnly
                    ? ["PRAGMA busy_timeout = 10000", "PRAGMA query_only = ON"]
                    : ["PRAGMA journal_mode = WAL", "PRAGMA busy_timeout = 10000", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"]
                return pragmas.reduce(eventLoop.makeSucceededVoidFuture()) { chain, pragma in
                    chain.flatMap { connection.query(pragma).map { _ in } }
                }.map { connection }
                    .flatMapError { error in connection.close().flatMapThrowing { throw error } }
            }
    }
}

extension HubDatabase {
    /// Whether `error` means the database cannot be reached right now (refused, dropped, shutting down, the
    /// pool out of connections) rather than a bad request or a bug: the API answers such failures with 503.
    public static func isUnavailable(_ error: any Error) -> Bool {
        if let error = error as? PSQLError {
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
                return true
            case .server:
                // Connection exceptions (class 08) and the server shutting down or starting (57P01–57P03).
                let state = error.serverInfo?[.sqlState] ?? ""
                return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
            default:
                return false
            }
        }
        if error is NIOConnectionError || error is ChannelError || error is ConnectionClosedUnderQuery { return true }
        if let error = error as? IOError, [ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ENETUNREACH, ETIMEDOUT, EPIPE].contains(error.errnoCode) { return true }
        let text = String(reflecting: error)
        return text.contains("ConnectionPoolTimeoutError") || text.contains("ConnectionPoolError") || text.contains("connectionError")
            || text.contains("Connection refused")
    }
}
