import Foundation
import HubCore
import Logging
import Metrics
import ServiceLifecycle
import SQLKit
import Synchronization

/// Named leases in the database (`hub_leases`): which instance runs something that must run on exactly one
/// instance at a time. A lease is held until `until`; its holder renews it, and when the holder dies any
/// instance may take it once it lapses. One statement takes or renews a lease (an upsert that only
/// overwrites a lapsed lease or one's own), so two instances can never both hold it.
public struct Leases: Sendable {
    let database: HubDatabase

    public init(database: HubDatabase) {
        self.database = database
    }

    /// Takes or renews `name` for `owner` until `now + seconds`; answers whether `owner` holds it now.
    public func acquire(_ name: String, owner: String, for seconds: Double, now: Double = Date().timeIntervalSince1970) async throws -> Bool {
        let rows = try await database.sql.raw("""
            INSERT INTO hub_leases (name, owner, acquired_at, until) VALUES (\(bind: name), \(bind: owner), \(bind: now), \(bind: now + seconds))
            ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until,
                acquired_at = CASE WHEN hub_leases.owner = excluded.owner THEN hub_leases.acquired_at ELSE excluded.acquired_at END
            WHERE hub_leases.owner = excluded.owner OR hub_leases.until < \(bind: now)
            RETURNING owner
            """).all()
        return try rows.first?.decode(column: "owner", as: String.self) == owner
    }

    /// Gives `name` up (if `owner` holds it), so another instance takes it at its next try.
    public func release(_ name: String, owner: String) async throws {
        try await database.sql.raw("UPDATE hub_leases SET until = 0 WHERE name = \(bind: name) AND owner = \(bind: owner)").run()
    }

    public struct Holder: Sendable, Equatable {
        public let owner: String
        public let since: Double
        public let until: Double
    }

    /// Who holds `name` now (`nil`: nobody; a lapsed lease is nobody's).
    public func holder(_ name: String, now: Double = Date().timeIntervalSince1970) async throws -> Holder? {
        guard let row = try await database.sql.raw("SELECT owner, acquired_at, until FROM hub_leases WHERE name = \(bind: name)").first() else { return nil }
        let until = try row.decode(column: "until", as: Double.self)
        guard until >= now else { return nil }
        return Holder(owner: try row.decode(column: "owner", as: String.self),
                      since: try row.decode(column: "acquired_at", as: Double.self), until: until)
    }
}

/// Whether this instance may run the jobs that must run on one instance at a time, and until when.
public final class MaintenanceGate: Sendable {
    private let state = Mutex<(until: Double, margin: Double)>((0, 0))

    public init() {}

    /// Held, with a margin of a tenth of the lease, so a job never starts on a lease about to lapse.
    public var isHeld: Bool {
        let (until, margin) = state.withLock { $0 }
        return until - margin > Date().timeIntervalSince1970
    }

    func set(until: Double, margin: Double) {
        state.withLock { $0 = (until, margin) }
    }

    var until: Double { state.withLock { $0.until } }
}

/// The jobs that must run on one instance at a time — scheduled overlay-key rotation and the retention
/// sweeps of shared tables (captions, the access log, status history, the change log), auto-archive — run
/// only on the instance that holds the `maintenance` lease. Every instance tries to take it every third of
/// the lease; the holder renews it, hands it back on shutdown, and when it dies another instance takes it
/// within one lease period. A job asks ``isHeld`` right before it runs; the jobs are also written so that
/// two overlapping runs do no harm (a rotation only happens while the key is still due).
public final class MaintenanceLease: Service, Sendable {
    public static let name = "maintenance"

    let leases: Leases
    let owner: String
    let duration: Double
    let logger: Logger
    let gate: MaintenanceGate
    let health: ServiceHealth?
    private let gauge: Gauge

    public init(database: HubDatabase, owner: String, duration: Double, health: ServiceHealth? = nil, logger: Logger, metrics: any MetricsFactory) {
        self.health = health
        self.leases = Leases(database: database)
        self.gate = database.maintenance
        self.owner = owner
        self.duration = duration
        self.logger = logger
        self.gauge = Gauge(label: "streamhub_job_lease_held", dimensions: [("lease", Self.name)], factory: metrics)
        gauge.record(0)
    }

    public var isHeld: Bool { gate.isHeld }

    /// Who holds it, for `/health`.
    public func holder() async -> Leases.Holder? {
        try? await leases.holder(Self.name)
    }

    /// One try: takes or renews the lease; answers whether it is held.
    @discardableResult
    public func renew() async -> Bool {
        let now = Date().timeIntervalSince1970
        let had = isHeld
        do {
            let held = try await leases.acquire(Self.name, owner: owner, for: duration, now: now)
            gate.set(until: held ? now + duration : 0, margin: duration / 10)
            if held != had {
                logger.notice(held ? "took the maintenance lease: scheduled jobs run here" : "lost the maintenance lease", metadata: ["lease_s": "\(duration)"])
            }
            gauge.record(held ? 1 : 0)
            // `/health` says where the scheduled jobs run.
            if held {
                health?.report("maintenance_lease", .running, detail: "held here: scheduled jobs run on this instance")
            } else {
                let holder = try? await leases.holder(Self.name, now: now)
                health?.report("maintenance_lease", .running, detail: holder.map { "held by \($0.owner)" } ?? "free; taking it")
            }
            return held
        } catch {
            // The database cannot say: stop running jobs once the lease we had lapses.
            logger.warning("could not renew the maintenance lease", metadata: ["error": "\(error)"])
            gauge.record(isHeld ? 1 : 0)
            health?.report("maintenance_lease", .degraded, detail: "the database did not answer")
            return isHeld
        }
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await renew()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(self.duration * 1000 / 3))) }
        }
        // Hand it back at once so another instance takes over without waiting for it to lapse.
        if gate.until > 0 {
            gate.set(until: 0, margin: 0)
            try? await leases.release(Self.name, owner: owner)
            gauge.record(0)
        }
    }
}

/// Runs `body` on one instance of the deployment at a time: while this instance holds lease `name`. Every
/// instance runs one of these with the same name; the one that takes the lease runs `body` and renews the
/// lease every third of `duration`, the others stand by and try again as often. When the holder dies, another
/// takes the lease within one lease period and starts `body`; a holder that cannot renew (the lease lost, or
/// the database silent until the lease ran out) stops `body` first, so two never run at once. A graceful
/// stop hands the lease back at once. `/health` shows the state under `healthName` while standing by.
public struct LeasedRunner: Service {
    let leases: Leases
    let name: String
    let owner: String
    let duration: Double
    let health: ServiceHealth?
    let healthName: String
    let logger: Logger
    let body: @Sendable () async throws -> Void

    public init(database: HubDatabase, name: String, owner: String, duration: Double, health: ServiceHealth?, healthName: String, logger: Logger,
                body: @escaping @Sendable () async throws -> Void) {
        self.leases = Leases(database: database)
        self.name = name
        self.owner = owner
        self.duration = duration
        self.health = health
        self.healthName = healthName
        self.logger = logger
        self.body = body
    }

    var interval: Duration { .milliseconds(Int64(duration * 1000 / 3)) }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = Date().timeIntervalSince1970
            if (try? await leases.acquire(name, owner: owner, for: duration, now: now)) == true {
                logger.notice("took a lease: running here", metadata: ["lease": "\(name)"])
                await runHolding(since: now)
                try? await leases.release(name, owner: owner)
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                logger.notice("gave a lease up", metadata: ["lease": "\(name)"])
            } else {
                let holder = try? await leases.holder(name, now: now)
                health?.report(healthName, .stopped, detail: "standing by: " + (holder.map { "runs on \($0.owner)" } ?? "taking it over"))
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Runs `body` while the lease is renewed; ends (stopping `body`) when it cannot be.
    private func runHolding(since: Double) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do { try await body() } catch { logger.warning("a leased service ended", metadata: ["lease": "\(name)", "error": "\(error)"]) }
            }
            group.addTask {
                var until = since + duration
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                    if Task.isCancelled || Task.isShuttingDownGracefully { return }
                    let now = Date().timeIntervalSince1970
                    do {
                        guard try await leases.acquire(name, owner: owner, for: duration, now: now) else {
                            logger.warning("lost a lease; stopping here", metadata: ["lease": "\(name)"])
                            return
                        }
                        until = now + duration
                    } catch {
                        // The database is silent: keep going only while the lease we have lasts.
                        if now + duration / 3 >= until {
                            logger.warning("could not renew a lease before it ran out; stopping here", metadata: ["lease": "\(name)", "error": "\(error)"])
                            return
                        }
                    }
                }
            }
            _ = await group.next()
            group.cancelAll()
        }
    }
}
