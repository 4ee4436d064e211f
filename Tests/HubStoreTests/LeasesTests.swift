import Foundation
import HubCore
import HubStore
import HubTestSupport
import Logging
import Metrics
import ServiceLifecycle
import Testing

@Suite struct LeasesTests {
    func withLeases(_ backend: TestDatabases.Backend, _ body: (Leases, HubDatabase, HubConfiguration.Database) async throws -> Void) async throws {
        try await TestDatabases.withMigrated(backend, CoreMigrations.all) { database, configuration in
            try await body(Leases(database: database), database, configuration)
        }
    }

    @Test(arguments: TestDatabases.available)
    func oneHolderAtATimeUntilItLapsesOrIsReleased(backend: TestDatabases.Backend) async throws {
        try await withLeases(backend) { leases, _, _ in
            #expect(try await leases.acquire("jobs", owner: "a", for: 10, now: 1000))
            #expect(try await !leases.acquire("jobs", owner: "b", for: 10, now: 1005), "held by a")
            #expect(try await leases.acquire("jobs", owner: "a", for: 10, now: 1008), "a renews")
            #expect(try await leases.holder("jobs", now: 1010)?.owner == "a")
            #expect(try await leases.holder("jobs", now: 1010)?.since == 1000, "a renewal keeps the time it was taken")
            #expect(try await !leases.acquire("jobs", owner: "b", for: 10, now: 1017.9))
            #expect(try await leases.acquire("jobs", owner: "b", for: 10, now: 1018.1), "lapsed: b takes it")
            #expect(try await !leases.acquire("jobs", owner: "a", for: 10, now: 1019), "a lost it")
            try await leases.release("jobs", owner: "a")
            #expect(try await leases.holder("jobs", now: 1020)?.owner == "b", "only the holder can release")
            try await leases.release("jobs", owner: "b")
            #expect(try await leases.holder("jobs", now: 1020) == nil)
            #expect(try await leases.acquire("jobs", owner: "a", for: 10, now: 1020), "released: taken at once")
            #expect(try await leases.acquire("other", owner: "b", for: 10, now: 1020), "leases are independent")
        }
    }

    @Test(arguments: TestDatabases.available)
    func racingInstancesNeverBothHoldIt(backend: TestDatabases.Backend) async throws {
        try await withLeases(backend) { leases, _, _ in
            for round in 0..<20 {
                let now = 5000 + Double(round) * 100  // each round starts after the last lease lapsed
                let winners = try await withThrowingTaskGroup(of: String?.self) { group in
                    for owner in ["a", "b", "c", "d"] {
                        group.addTask { try await leases.acquire("race", owner: owner, for: 30, now: now) ? owner : nil }
                    }
                    return try await group.reduce(into: [String]()) { if let owner = $1 { $0.append(owner) } }
                }
                #expect(winners.count == 1, "round \(round): \(winners)")
                #expect(try await leases.holder("race", now: now)?.owner == winners.first)
            }
        }
    }

    @Test(arguments: TestDatabases.available)
    func theMaintenanceLeaseOpensTheGateOfOneInstanceAndHandsOverOnShutdown(backend: TestDatabases.Backend) async throws {
        try await withLeases(backend) { _, database, configuration in
            // Two instances: each its own connection pool (and gate) on the one database.
            let other = try HubDatabase.open(configuration, logger: Logger(label: "b"))
            let health = ServiceHealth()
            let a = MaintenanceLease(database: database, owner: "a", duration: 5, health: health, logger: Logger(label: "a"),
                                     metrics: NOOPMetricsHandler.instance)
            let b = MaintenanceLease(database: other, owner: "b", duration: 5, logger: Logger(label: "b"), metrics: NOOPMetricsHandler.instance)
            #expect(await a.renew())
            #expect(await !b.renew())
            #expect(a.isHeld && !b.isHeld)
            #expect(database.maintenance.isHeld && !other.maintenance.isHeld, "the jobs of a run, those of b wait")
            #expect(await b.holder()?.owner == "a")
            // a shuts down gracefully: it hands the lease back, and b takes it at its next try.
            let group = ServiceGroup(configuration: .init(services: [a], logger: Logger(label: "group")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                // The service runs once it has renewed the lease (it says so on /health).
                try await eventually("the lease service to run") { health.snapshot["maintenance_lease"] != nil }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(!a.isHeld)
            #expect(await b.renew(), "taken at once, without waiting for the lease to lapse")
            #expect(other.maintenance.isHeld)
            await other.shutdown()
        }
    }
}
