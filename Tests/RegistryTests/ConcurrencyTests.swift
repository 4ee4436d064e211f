import Foundation
import HTTPTypes
import HubTestSupport
@testable import Registry
import StreamHub
import Synchronization
import Testing

/// The versions of streams whose writes were acknowledged, as readers must at least see them.
actor AcknowledgedVersions {
    private var versions: [Int: Int] = [:]
    func note(_ id: Int, _ version: Int) { versions[id] = max(versions[id] ?? 0, version) }
    func snapshot() -> [Int: Int] { versions }
}

@Suite struct ConcurrencyTests {
    /// A write to one stream keeps the cached lists it cannot change: another status's lists, other pages
    /// of a list sorted by something the write left alone; and rebuilds the ones it can.
    @Test func aWriteToOneStreamKeepsTheListsItCannotChange() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            var made: [Int] = []
            for index in 0..<12 {
                let body = #"{"link":"https://twitch.tv/keep_\#(index)","status":"\#(index < 6 ? "live" : "offline")","city":"Lima"}"#
                made.append(try #require(try await team.editor.post("/api/v1/streams", body).json["id"] as? Int))
            }
            let queries = ["?status=live", "?status=offline&per_page=2&page=1", "?city=lima&sort=-updated_at", "?q=nothing-matches"]
            for query in queries { _ = try await team.viewer.get("/api/v1/streams" + query) }
            let builds = { app.registry.service.listBuilds.load(ordering: .relaxed) }
            let before = builds()
            // An offline stream (the oldest, so not on page 1 of the offline list) gets a new title: the live list,
            // page 1 of the offline list and the list nothing matches stay; the list sorted by updated_at is rebuilt.
            #expect(try await team.editor.patch("/api/v1/streams/\(made[6])", #"{"title":"renamed"}"#).status == .ok)
            for query in queries { _ = try await team.viewer.get("/api/v1/streams" + query) }
            #expect(builds() - before == 1, "only the list sorted by updated_at was rebuilt")
            // The stream goes live: the live list and the offline list change too.
            let second = builds()
            #expect(try await team.editor.patch("/api/v1/streams/\(made[6])", #"{"status":"live"}"#).status == .ok)
            let live = try await team.viewer.get("/api/v1/streams?status=live")
            #expect(ids(live).contains(made[6]))
            _ = try await team.viewer.get("/api/v1/streams?status=offline&per_page=2&page=1")
            _ = try await team.viewer.get("/api/v1/streams?q=nothing-matches")
            #expect(builds() - second == 2, "the live list and the offline page, not the list nothing matches")
        }
    }

    /// Reads while writes flow: writers change random streams (status, city, pin, title) while readers run
    /// rotating filtered, sorted, paged queries. No read may show a stream older than a write acknowledged
    /// before the read began (nor keep one a write took out of its filter); `total_count` covers the page;
    /// and when the writes stop, every cached answer equals one built straight from the database, ETag too.
    @Test(arguments: TestDatabases.available)
    func readsWhileWritesFlowNeverShowAnAcknowledgedWriteUndone(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let cities = ["Omaha", "Lima", "Reno", "Tulsa"]
            var ids: [Int] = []
            for index in 0..<40 {
                let body = #"{"link":"https://twitch.tv/hammer_\#(index)","city":"\#(cities[index % 4])","status":"\#(["live", "offline", "unknown"][index % 3])","title":"night \#(index)"}"#
                ids.append(try #require(try await team.editor.post("/api/v1/streams", body).json["id"] as? Int))
            }
            let queries = ["", "?status=live", "?status=offline,unknown&sort=title", "?city=Omaha", "?is_pinned=true", "?q=night%201", "?notStatus=live&city=lima",
                           "?sort=-updated_at&per_page=5", "?per_page=7&page=3", "?search=twitch.tv/hammer_1", "?link=https://www.twitch.tv/hammer_7",
                           "?status=live&is_pinned=false&sort=city,-id", "?format=streamwall", "?platform=twitch&per_page=100"]
            let acked = AcknowledgedVersions()
            let editor = team.editor, viewer = team.viewer, streamIDs = ids
            let stop = ManagedAtomicFlag()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        var random = SystemRandomNumberGenerator()
                        for step in 0..<50 {
                            let id = streamIDs.randomElement(using: &random)!
                            let change = [#"{"status":"live"}"#, #"{"status":"offline"}"#, #"{"city":"\#(cities.randomElement(using: &random)!)"}"#,
                                          #"{"title":"night \#(writer)-\#(step)"}"#][Int.random(in: 0..<4, using: &random)]
                            let response = step % 7 == 0
                                ? try await editor.put("/api/v1/streams/\(id)/pin")
                                : try await editor.patch("/api/v1/streams/\(id)", change)
                            guard response.status == .ok else { continue }
                            if let version = response.json["version"] as? Int { await acked.note(id, version) }
                        }
                    }
                }
                for reader in 0..<6 {
                    group.addTask {
                        var turn = reader
                        while !stop.isSet {
                            let query = queries[turn % queries.count]
                            turn += 1
                            let floor = await acked.snapshot()
                            let answer = try await viewer.get("/api/v1/streams" + query)
                            #expect(answer.status == .ok)
                            let streams = query.contains("streamwall") ? answer.array : (answer.json["streams"] as? [[String: any Sendable]] ?? [])
                            if !query.contains("streamwall") {
                                let meta = answer.json["meta"] as? [String: any Sendable]
                                #expect((meta?["total_count"] as? Int ?? -1) >= streams.count, "\(query)")
                            }
                            for stream in streams where !query.contains("streamwall") {
                                guard let id = stream["id"] as? Int, let version = stream["version"] as? Int else { continue }
                                #expect(version >= floor[id] ?? 0, "\(query): stream \(id) at version \(version) after version \(floor[id] ?? 0) was acknowledged")
                            }
                        }
                    }
                }
                // The writers are the first four tasks; when they are done, stop the readers.
                for _ in 0..<4 { try await group.next() }
                stop.set()
                try await group.waitForAll()
            }
            // Quiet now: each cached answer is the one the database gives.
            for query in queries {
                let cached = try await viewer.get("/api/v1/streams" + query)
                app.registry.service.changed()
                let fresh = try await viewer.get("/api/v1/streams" + query)
                #expect(cached.text == fresh.text, "\(query)")
                #expect(cached.headers[.eTag] == fresh.headers[.eTag], "\(query)")
            }
        }
    }

    /// Many operators PATCH the same stream with the same If-Match at once: in every round exactly one
    /// wins, the others get 412, and the stream holds the winner's write.
    @Test(arguments: TestDatabases.available)
    func concurrentConditionalWritersExactlyOneWinsEachRound(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let created = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/contested"}"#)
            let id = try #require(created.json["id"] as? Int)
            let writers = 12
            for round in 0..<8 {
                let current = try await team.viewer.get("/api/v1/streams/\(id)")
                let etag = try #require(current.headers[.eTag])
                let version = try #require(current.json["version"] as? Int)
                let editor = team.editor
                let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                    for writer in 0..<writers {
                        group.addTask {
                            let response = try await editor.patch("/api/v1/streams/\(id)", #"{"title":"round \#(round) writer \#(writer)"}"#,
                                                                  headers: [.ifMatch: etag])
                            return (writer, Int(response.status.code))
                        }
                    }
                    return try await group.reduce(into: [(Int, Int)]()) { $0.append($1) }
                }
                let winners = results.filter { $0.1 == 200 }
                #expect(winners.count == 1, "round \(round): \(results.map(\.1))")
                #expect(results.filter { $0.1 == 412 }.count == writers - 1, "round \(round): \(results.map(\.1))")
                let after = try await team.viewer.get("/api/v1/streams/\(id)")
                #expect(after.json["version"] as? Int == version + 1)
                if let winner = winners.first {
                    #expect(after.json["title"] as? String == "round \(round) writer \(winner.0)")
                }
            }
            let audit = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM audit_log WHERE entity = 'stream' AND action = 'update'").first()?
                .decode(column: "n", as: Int.self)
            #expect(audit == 8, "one audit entry per winning write")
        }
    }

    /// The same link posted by many clients at once makes exactly one stream.
    @Test(arguments: TestDatabases.available)
    func concurrentPostsOfOneLinkMakeOneStream(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let editor = team.editor
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        let link = index % 2 == 0 ? "https://www.twitch.tv/Same" : "twitch.tv/same/?utm_source=chat"
                        return Int(try await editor.post("/api/v1/streams", #"{"link":"\#(link)"}"#).status.code)
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 201 }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == 409 }.count == 15, "\(statuses)")
            let list = try await team.viewer.get("/api/v1/streams?is_archived=any")
            #expect((list.json["meta"] as? [String: any Sendable])?["total_count"] as? Int == 1)
        }
    }
}

/// A flag set once, read by many tasks.
final class ManagedAtomicFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
