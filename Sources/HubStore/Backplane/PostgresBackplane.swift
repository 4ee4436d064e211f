import Foundation
import HubCore
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SQLKit
import Synchronization

/// Carries events between instances through PostgreSQL `LISTEN`/`NOTIFY` on one channel.
///
/// - Sending uses one dedicated connection, so notifications leave in publish order; a batch becomes a
///   single `SELECT pg_notify(…), pg_notify(…)` round trip. PostgreSQL delivers one session's
///   notifications in the order they were sent.
/// - A payload over ``inlineLimit`` bytes is stored in `hub_event_payloads` and the notification carries
///   its row id; receivers read the row before delivering anything after it, so order holds.
/// - Receiving uses another dedicated connection that reconnects with backoff. Notifications sent while
///   it is disconnected are lost (PostgreSQL does not queue them); the bus counts such gaps.
///
/// Wire form of a notification: `v2|origin|sequence|micros|type|visibility|I|<json>` or
/// `…|visibility|R|<row id>` (visibility as ``EventVisibility/wireForm``). A `v1` notification (no
/// visibility, from an instance not yet upgraded) is delivered to admins only.
public final class PostgresBackplane: Backplane, Sendable {
    public static let channel = "streamhub_events"
    /// NOTIFY refuses payloads of 8000 bytes or more; stay well below.
    public static let inlineLimit = 7000

    private let database: HubDatabase
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let health: ServiceHealth?
    private let sender = Mutex<PostgresConnection?>(nil)
    private let connectionIDs = Atomic<Int>(1)

    public init(database: HubDatabase, logger: Logger, health: ServiceHealth? = nil) throws {
        guard let configuration = database.postgresConfiguration else {
            throw HubError.unavailable("the PostgreSQL backplane needs a PostgreSQL database")
        }
        self.database = database
        self.configuration = configuration
        self.logger = logger
        self.health = health
    }

    public var isDistributed: Bool { true }

    public func send(_ batch: [EventEnvelope]) async throws {
        let connection = try await senderConnection()
        do {
            var inline: [String] = []
            for envelope in batch {
                let header = "v2|\(envelope.origin)|\(envelope.sequence)|\(envelope.publishedAtMicros)|\(envelope.type)|\(envelope.visibility.wireForm)|"
                if header.utf8.count + 2 + envelope.payload.readableBytes <= Self.inlineLimit {
                    inline.append(header + "I|" + envelope.payloadString)
                } else {
                    try await notify(inline, on: connection)
                    inline.removeAll()
                    let rows = try await connection.query(
                        "INSERT INTO hub_event_payloads (body) VALUES (\(envelope.payloadString)) RETURNING id", logger: logger)
                    var id: Int64 = 0
                    for try await row in rows { id = try row.decode(Int64.self) }
                    inline.append(header + "R|\(id)")
                }
            }
            try await notify(inline, on: connection)
        } catch {
            // The connection may be broken; make a new one next time.
            sender.withLock { $0 = nil }
            try? await connection.close()
            throw error
        }
    }

    public func shutdown() async {
        let connection = sender.withLock { current -> PostgresConnection? in
            defer { current = nil }
            return current
        }
        try? await connection?.close()
    }

    private func notify(_ payloads: [String], on connection: PostgresConnection) async throws {
        guard !payloads.isEmpty else { return }
        var bindings = PostgresBindings(capacity: payloads.count)
        var calls: [String] = []
        for (index, payload) in payloads.enumerated() {
            bindings.append(payload)
            calls.append("pg_notify('\(Self.channel)', $\(index + 1))")
        }
        _ = try await connection.query(PostgresQuery(unsafeSQL: "SELECT " + calls.joined(separator: ", "), binds: bindings), logger: logger)
    }

    private func senderConnection() async throws -> PostgresConnection {
        if let existing = sender.withLock({ $0 }), !existing.isClosed { return existing }
        let connection = try await connect()
        sender.withLock { $0 = connection }
        return connection
    }

    private func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(),
            configuration: configuration,
            id: connectionIDs.wrappingAdd(1, ordering: .relaxed).newValue,
            logger: logger
        ).get()
    }

    public func receive(_ deliver: @escaping @Sendable (EventEnvelope) async -> Void) async throws {
        var failures = 0
        var lastCleanup = ContinuousClock.now
        while !Task.isCancelled {
            do {
                let connection = try await connect()
                health?.report("backplane", .running, detail: "postgres LISTEN \(Self.channel)")
                failures = 0
                defer { Task { try? await connection.close() } }
                try await withTaskCancellationHandler {
                    try await connection.listen(on: Self.channel) { notifications in
                        for try await notification in notifications {
                            if let envelope = try await decode(notification.payload) {
                                await deliver(envelope)
                            }
                            if ContinuousClock.now - lastCleanup > .seconds(60) {
                                lastCleanup = .now
                                try? await database.sql.raw("DELETE FROM hub_event_payloads WHERE created_at < now() - interval '10 minutes'").run()
                            }
                        }
                    }
                } onCancel: {
                    Task { try? await connection.close() }
                }
                if Task.isCancelled { return }
                throw HubError.unavailable("the LISTEN connection ended")
            } catch {
                if Task.isCancelled { return }
                failures += 1
                health?.report("backplane", .degraded, detail: "reconnecting: \(error)")
                logger.warning("backplane listener failed; reconnecting", metadata: ["error": "\(String(reflecting: error))", "attempt": "\(failures)"])
                let delay = min(5_000, 100 * (1 << min(failures, 6)))
                try? await Task.sleep(for: .milliseconds(delay))
            }
        }
    }

    /// Parses one notification; `nil` (logged) for anything not in this backplane's format.
    func decode(_ text: String) async throws -> EventEnvelope? {
        var parts = text.split(separator: "|", maxSplits: 7, omittingEmptySubsequences: false)
        var visibility = EventVisibility.admins
        if parts.first == "v2", parts.count == 8 {
            visibility = EventVisibility(wireForm: parts.remove(at: 5))
        } else if parts.first == "v1" {
            parts = text.split(separator: "|", maxSplits: 6, omittingEmptySubsequences: false)
        }
        guard parts.count == 7, let sequence = UInt64(parts[2]), let micros = Int64(parts[3]) else {
            logger.warning("ignoring a malformed backplane notification", metadata: ["length": "\(text.utf8.count)"])
            return nil
        }
        let body: String
        switch parts[5] {
        case "I":
            body = String(parts[6])
        case "R":
            guard let id = Int64(parts[6]) else { return nil }
            guard let row = try await database.sql.raw("SELECT body FROM hub_event_payloads WHERE id = \(bind: id)").first() else {
                logger.warning("a large event's payload row is gone", metadata: ["payload_id": "\(id)"])
                return nil
            }
            body = try row.decode(column: "body", as: String.self)
        default:
            return nil
        }
        return EventEnvelope(type: String(parts[4]), payload: ByteBuffer(string: body), origin: String(parts[1]),
                             sequence: sequence, publishedAtMicros: micros, visibility: visibility)
    }
}
