@preconcurrency import AsyncKit
@testable import HubStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import Testing

/// `ClosedConnectionGuard`: a query whose connection closes while it waits fails (as "database unavailable")
/// instead of waiting forever — what PostgresNIO does to a query written at the moment the server goes away.
@Suite struct ClosedConnectionGuardTests {
    /// A connection that closes when told to.
    final class Connection: ConnectionPoolItem, Sendable {
        let eventLoop: any EventLoop
        private let closed = NIOLockedValueBox(false)
        init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }
        var isClosed: Bool { closed.withLockedValue { $0 } }
        func close() -> EventLoopFuture<Void> {
            closed.withLockedValue { $0 = true }
            return eventLoop.makeSucceededVoidFuture()
        }
    }

    /// A database whose queries never answer (the lost promise), or answer at once; it counts them.
    struct Database: SQLDatabase {
        let eventLoop: any EventLoop
        let answers: Bool
        let executed = NIOLockedValueBox(0)
        var logger: Logger { Logger(label: "test") }
        var dialect: any SQLDialect { SQLiteDialect() }
        func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
            executed.withLockedValue { $0 += 1 }
            return answers ? eventLoop.makeSucceededVoidFuture() : eventLoop.makePromise(of: Void.self).futureResult
        }
    }

    @Test func aQueryWhoseConnectionClosesFailsAsUnavailable() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let connection = Connection(eventLoop: loop)
        let guarded = ClosedConnectionGuard(base: Database(eventLoop: loop, answers: false), connection: connection)
        let outcome = NIOLockedValueBox<Result<Void, any Error>?>(nil)
        Task {
            do {
                try await guarded.raw("INSERT INTO t VALUES (1)").run()
                outcome.withLockedValue { $0 = .success(()) }
            } catch {
                outcome.withLockedValue { $0 = .failure(error) }
            }
        }
        _ = try await connection.close().get()
        // Without the guard the query would wait forever: give it 5 s (the check runs every second).
        let deadline = ContinuousClock.now + .seconds(5)
        while outcome.withLockedValue({ $0 }) == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        switch outcome.withLockedValue({ $0 }) {
        case .none: Issue.record("the query still waits 5 s after its connection closed")
        case .success: Issue.record("a query on a closed connection succeeded")
        case .failure(let error): #expect(HubDatabase.isUnavailable(error), "\(error)")
        }
    }

    @Test func anAnsweredQueryOnAnOpenConnectionIsUntouched() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let connection = Connection(eventLoop: loop)
        let database = Database(eventLoop: loop, answers: true)
        let guarded = ClosedConnectionGuard(base: database, connection: connection)
        try await guarded.raw("SELECT 1").run()
        try await guarded.withSession { try await $0.raw("SELECT 1").run() }
        #expect(database.executed.withLockedValue { $0 } == 2, "both queries reached the database, through the guard")
    }
}
