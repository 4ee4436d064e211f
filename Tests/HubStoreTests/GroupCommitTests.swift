import HubCore
import HubStore
import HubTestSupport
import Logging
import SQLKit
import Testing

/// `HubDatabase.write`: on SQLite, concurrent writes share transactions (group commit). Each caller must
/// get its own answer, a refused write must fail alone, and a write that breaks its transaction must not
/// take the others with it.
@Suite struct GroupCommitTests {
    let logger = Logger(label: "test")

    /// SQLite only: on PostgreSQL `write` is a plain transaction on the pool (400 at once would only test
    /// the pool's queue timeout).
    @Test(arguments: [TestDatabases.Backend.sqlite])
    func concurrentWritesEachGetTheirOwnAnswer(backend: TestDatabases.Backend) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try HubDatabase.open(try await TestDatabases.make(backend, in: directory), logger: logger)
        do {
            try await database.sql.raw("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)").run()
            let writers = 400
            // Every 7th write is refused before it writes (a HubError: fails alone); every 50th runs invalid
            // SQL after writing (the whole shared transaction rolls back and its writes run again alone).
            let outcomes = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
                for n in 0..<writers {
                    group.addTask {
                        do {
                            let value = try await database.write { db -> Int in
                                if n % 7 == 3 { throw HubError.validation("write \(n) refused") }
                                try await db.raw("INSERT INTO counters (name, value) VALUES (\(bind: "w\(n)"), \(bind: n))").run()
                                if n % 50 == 49 { try await db.raw("THIS IS NOT SQL").run() }
                                // Reads its own write (and, in a shared transaction, those before it).
                                let row = try await db.raw("SELECT value FROM counters WHERE name = \(bind: "w\(n)")").first()
                                return try row?.decode(column: "value", as: Int.self) ?? -1
                            }
                            return (n, .success(value))
                        } catch {
                            return (n, .failure(error))
                        }
                    }
                }
                var all: [Int: Result<Int, any Error>] = [:]
                for await (n, outcome) in group { all[n] = outcome }
                return all
            }
            #expect(outcomes.count == writers)
            for n in 0..<writers {
                switch outcomes[n] {
                case .success(let value):
                    #expect(n % 7 != 3 && n % 50 != 49, "write \(n) should have failed")
                    #expect(value == n)
                case .failure(let error as HubError):
                    #expect(n % 7 == 3, "write \(n): \(error)")
                    #expect(error.message == "write \(n) refused")
                case .failure:
                    #expect(n % 50 == 49, "write \(n) failed with a database error")
                case nil:
                    Issue.record("no answer for write \(n)")
                }
            }
            // Exactly the successful writes are stored: none of the refused or broken ones, all of the rest.
            let rows = try await database.sql.raw("SELECT name FROM counters").all()
            let stored = Set(try rows.map { try $0.decode(column: "name", as: String.self) })
            let expected = Set((0..<writers).filter { $0 % 7 != 3 && $0 % 50 != 49 }.map { "w\($0)" })
            #expect(stored == expected)
            // The writes really shared transactions (else this test proves nothing about batching).
            let stats = database.groupCommitStats
            #expect(stats.writes == writers)
            #expect(stats.batches < writers / 2, "\(stats.batches) transactions for \(writers) writes")
        } catch {
            await database.shutdown()
            throw error
        }
        await database.shutdown()
    }
}
