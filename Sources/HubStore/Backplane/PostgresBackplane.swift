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
/// - Every notification is also written to a bounded event log (`hub_event_log`: the last 5 minutes, at
///   most 100,000 events) in the same statement, so it is logged exactly when it is sent, and carries its
///   log id (`L<id>|…`). Receiving uses another dedicated connection that reconnects with backoff; after a
///   reconnect it first replays what the log holds since the last id it saw (less a margin for publishers
///   that committed out of id order) and only then goes live — the bus drops what it has seen already, by
///   origin and sequence, so nothing arrives twice and each publisher's order holds. Only a gap older than
///   the log is lost: then local clients are told to resync (a `resync` event) and the loss is counted.
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
    /// The newest log id received (0: none yet).
    private let lastLogID = Atomic<Int64>(0)
    /// Ids of publishers that committed out of id order are at most this far behind the newest seen.
    static let replayMargin: Int64 = 1_000
    /// Log bounds (documented in the README).
    static let logSeconds = 300
    static let logRows: Int64 = 100_000

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

    /// Logs and sends `payloads` in one statement (one transaction): each notification is `L<log id>|payload`.
    private func notify(_ payloads: [String], on connection: PostgresConnection) async throws {
        guard !payloads.isEmpty else { return }
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(payloads)
        let sql = """
            WITH logged AS (INSERT INTO hub_event_log (body) SELECT body FROM unnest($1::text[]) WITH ORDINALITY AS t(body, n) ORDER BY n RETURNING id, body)
            SELECT pg_notify('\(Self.channel)', 'L' || id || '|' || body) FROM (SELECT id, body FROM logged ORDER BY id) AS ordered
            """
        _ = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
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
                        // Listening: what was sent while this instance was not is in the log.
                        try await catchUp(deliver)
                        for try await notification in notifications {
                            if let envelope = try await decode(notification.payload) {
                                await deliver(envelope)
                            }
                            if ContinuousClock.now - lastCleanup > .seconds(60) {
                                lastCleanup = .now
                                try? await database.sql.raw("DELETE FROM hub_event_payloads WHERE created_at < now() - interval '10 minutes'").run()
                                try? await database.sql.raw("""
                                    DELETE FROM hub_event_log WHERE logged_at < now() - interval '\(unsafeRaw: String(Self.logSeconds)) seconds'
                                        OR id < (SELECT MAX(id) FROM hub_event_log) - \(bind: Self.logRows)
                                    """).run()
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

    /// The first time: notes where the log is. After a reconnect: replays the log from the last id seen (less
    /// the margin); when the log no longer reaches back that far, tells local clients to resync.
    func catchUp(_ deliver: @escaping @Sendable (EventEnvelope) async -> Void) async throws {
        let last = lastLogID.load(ordering: .relaxed)
        guard last > 0 else {
            let newest = try await database.sql.raw("SELECT COALESCE(MAX(id), 0) AS id FROM hub_event_log").first()?.decode(column: "id", as: Int64.self) ?? 0
            lastLogID.store(max(1, newest), ordering: .relaxed)
            return
        }
        let oldest = try await database.sql.raw("SELECT MIN(id) AS id FROM hub_event_log").first()?.decode(column: "id", as: Int64?.self)
        var replayed = 0
        if let oldest, oldest > last + 1 {
            lost.wrappingAdd(1, ordering: .relaxed)
            logger.error("events were missed beyond the event log; telling clients to resync", metadata: ["last_seen": "\(last)", "oldest_logged": "\(oldest)"])
            await deliver(EventEnvelope(type: Self.resyncEvent, payload: ByteBuffer(string: #"{"reason":"backplane_gap"}"#),
                                        origin: "backplane:" + UUID().uuidString, sequence: 1,
                                        publishedAtMicros: Int64(Date().timeIntervalSince1970 * 1_000_000), visibility: .everyone))
        }
        let rows = try await database.sql.raw("""
            SELECT id, body FROM hub_event_log WHERE id > \(bind: max(0, last - Self.replayMargin)) ORDER BY id
            """).all()
        for row in rows {
            let id = try row.decode(column: "id", as: Int64.self)
            if let envelope = try await decode(try row.decode(column: "body", as: String.self)) {
                await deliver(envelope)
                replayed += 1
            }
            if id > lastLogID.load(ordering: .relaxed) { lastLogID.store(id, ordering: .relaxed) }
        }
        logger.notice("backplane listener back; replayed the event log", metadata: ["from_id": "\(last)", "events": "\(replayed)"])
    }

    /// The local event that tells clients they missed events beyond the log and should reload what they show.
    public static let resyncEvent = "resync"
    /// Times events were lost beyond the log.
    private let lost = Atomic<Int>(0)
    public var gapsBeyondLog: Int { lost.load(ordering: .relaxed) }

    /// Parses one notification (`L<log id>|…` notes the id); `nil` (logged) for anything not in this
    /// backplane's format.
    func decode(_ text: String) async throws -> EventEnvelope? {
        var text = Substring(text)
        if text.first == "L", let bar = text.firstIndex(of: "|"), let id = Int64(text[text.index(after: text.startIndex)..<bar]) {
            if id > lastLogID.load(ordering: .relaxed) { lastLogID.store(id, ordering: .relaxed) }
            text = text[text.index(after: bar)...]
        }
        return try await decodeEvent(String(text))
    }

    func decodeEvent(_ text: String) async throws -> EventEnvelope? {
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
