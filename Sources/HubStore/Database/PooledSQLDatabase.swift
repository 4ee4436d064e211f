@preconcurrency import AsyncKit
import Logging
import NIOCore
import SQLKit

/// An `SQLDatabase` over an AsyncKit connection pool: each query borrows a connection; a session (see
/// `withSession`) keeps one connection for its whole closure, which is what transactions need.
struct PooledSQLDatabase<Source: ConnectionPoolSource>: SQLDatabase where Source.Connection: Sendable {
    let pool: EventLoopGroupConnectionPool<Source>
    let makeSQL: @Sendable (Source.Connection) -> any SQLDatabase
    let dialect: any SQLDialect
    let logger: Logger
    /// Fail a query whose connection has closed under it instead of waiting for its answer (see
    /// ``ClosedConnectionGuard``). On for PostgreSQL; SQLite connections do not close by themselves.
    var guardsClosedConnections = false

    var eventLoop: any EventLoop { pool.eventLoopGroup.any() }
    var queryLogLevel: Logger.Level? { .trace }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        pool.withConnection(logger: logger) { connection in
            session(on: connection).execute(sql: query, onRow)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await execute(sql: query, onRow).get()
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let connection = try await pool.requestConnection(logger: logger).get()
        defer { pool.releaseConnection(connection, logger: logger) }
        return try await closure(session(on: connection))
    }

    private func session(on connection: Source.Connection) -> any SQLDatabase {
        let sql = makeSQL(connection)
        return guardsClosedConnections ? ClosedConnectionGuard(base: sql, connection: connection) : sql
    }
}

/// Fails a query when its connection is found closed while the query still waits for its answer.
///
/// PostgresNIO hands a query to its channel with a write whose promise it drops; when the server goes away at
/// that very moment (a restart, a failover), the write reaches a pipeline already torn down and the query's
/// promise is never completed — the request behind it would hang forever, holding its pooled connection.
/// A query that has not answered within a second is checked once a second: on a closed connection it fails
/// as `unavailable` (503 `database_unavailable`). A query answers within that second almost always, and the
/// check costs one timer per query.
struct ClosedConnectionGuard<Connection: ConnectionPoolItem & Sendable>: SQLDatabase {
    let base: any SQLDatabase
    let connection: Connection

    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { base.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        let loop = connection.eventLoop
        let answer = loop.makePromise(of: Void.self)
        base.execute(sql: query, onRow).cascade(to: answer)
        let connection = self.connection
        let watchdog = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            if connection.isClosed {
                answer.fail(ConnectionClosedUnderQuery())
            }
        }
        answer.futureResult.whenComplete { _ in watchdog.cancel() }
        return answer.futureResult
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await execute(sql: query, onRow).get()
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}

/// A query given up because its connection closed while it waited (``HubDatabase/isUnavailable(_:)`` is true).
struct ConnectionClosedUnderQuery: Error, CustomStringConvertible {
    var description: String { "the database connection closed while a query waited for its answer" }
}
