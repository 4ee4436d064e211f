import Foundation
import Logging
import ServiceLifecycle
import SQLKit
import Synchronization

/// Where each instance of the deployment answers (`hub_instances`): every instance writes its address
/// (`--advertise-url`) and a heartbeat every few seconds, so another can reach it — to fetch a recording's
/// segment from the instance whose disk holds it. Lookups are cached for a few seconds.
public final class InstanceDirectory: Service, Sendable {
    let database: HubDatabase
    let instanceID: String
    let address: String?
    let logger: Logger
    private let cache = Mutex<[String: (address: String?, at: ContinuousClock.Instant)]>([:])
    static let heartbeat = Duration.seconds(5)

    public init(database: HubDatabase, instanceID: String, address: String?, logger: Logger) {
        self.database = database
        self.instanceID = instanceID
        self.address = address
        self.logger = logger
    }

    /// The address of a live instance (heard from in the last 30 s), or `nil`.
    public func address(of instance: String) async -> String? {
        if instance == instanceID { return address }
        if let cached = cache.withLock({ $0[instance] }), ContinuousClock.now - cached.at < .seconds(5) { return cached.address }
        let now = Date().timeIntervalSince1970
        let row = try? await database.reader.raw("""
            SELECT address FROM hub_instances WHERE id = \(bind: instance) AND seen_at > \(bind: now - 30)
            """).first()
        let found = try? row?.decode(column: "address", as: String?.self)
        cache.withLock { cache in
            if cache.count > 1_000 { cache.removeAll() }
            cache[instance] = (found, .now)
        }
        return found
    }

    func announce() async {
        let now = Date().timeIntervalSince1970
        do {
            try await database.sql.raw("""
                INSERT INTO hub_instances (id, address, seen_at) VALUES (\(bind: instanceID), \(bind: address), \(bind: now))
                ON CONFLICT (id) DO UPDATE SET address = excluded.address, seen_at = excluded.seen_at
                """).run()
        } catch {
            logger.warning("could not announce this instance", metadata: ["error": "\(error)"])
        }
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await announce()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.heartbeat) }
        }
        // Leaving: no one should send this instance anything more.
        try? await database.sql.raw("UPDATE hub_instances SET seen_at = 0 WHERE id = \(bind: instanceID)").run()
    }
}
