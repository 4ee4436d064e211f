import Foundation
import HTTPTypes
import HubTestSupport
import Registry
import StreamHub
import Testing

@Suite struct ConcurrencyTests {
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
