import Foundation
import HubCore
import HubStore
import HubTestSupport
import Logging
import Testing
@testable import StreamManager

/// One renderer per program across instances: two ``ProgramLeases`` (two instances) on one database.
@Suite struct ProgramLeasesTests {
    func withTwoInstances(_ backend: TestDatabases.Backend, _ body: (ProgramLeases, ProgramLeases, HubDatabase) async throws -> Void) async throws {
        try await TestDatabases.withMigrated(backend, CoreMigrations.all) { database, _ in
            try await body(ProgramLeases(database: database, owner: "a", duration: 30), ProgramLeases(database: database, owner: "b", duration: 30), database)
        }
    }

    @Test(arguments: TestDatabases.available)
    func oneInstanceRendersAProgramAndAnotherTakesItWhenGivenUp(backend: TestDatabases.Backend) async throws {
        try await withTwoInstances(backend) { a, b, _ in
            #expect(await a.take("desk"))
            #expect(await !b.take("desk"), "a renders it")
            #expect(b.waitingPrograms == ["desk"], "b tries again at its renewals")
            #expect(await b.take("night"), "programs are leased one by one")
            #expect(await b.holder(of: "desk") == "a")
            #expect(await a.holder(of: "night") == "b")
            #expect(a.isHeld("desk") && !b.isHeld("desk"))

            #expect(await a.renew("desk"), "the holder renews")
            await a.release("desk")
            #expect(!a.isHeld("desk") && a.heldPrograms.isEmpty)
            #expect(await b.renew("desk"), "given back: taken at the next try")
            #expect(b.waitingPrograms.isEmpty)
            #expect(await !a.renew("desk"), "a lost it")
            #expect(await a.holder(of: "desk") == "b")

            await b.releaseAll()
            #expect(b.heldPrograms.isEmpty)
            #expect(await a.take("desk"), "a shutdown hands every program over at once")
            #expect(await a.take("night"))
        }
    }

    @Test func aLeaseAboutToRunOutIsNotCountedAsHeld() async throws {
        try await withTwoInstances(.sqlite) { _, _, database in
            let short = ProgramLeases(database: database, owner: "c", duration: 0.2)
            #expect(await short.take("desk"))
            #expect(short.isHeld("desk"))
            #expect(!short.isHeld("desk", now: Date().timeIntervalSince1970 + 0.19), "within the last tenth of the lease: a renderer stops")
        }
    }
}
