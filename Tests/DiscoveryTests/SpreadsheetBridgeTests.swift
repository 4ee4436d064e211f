import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import Registry
import StreamHub
import Testing
@testable import Discovery

@Suite struct SpreadsheetBridgeTests {
    @Test func csvParsingFollowsRFC4180() throws {
        let rows = try StreamsCSV.parse("\u{FEFF}Link,Notes\r\nhttps://a.example/x.m3u8,\"one, two\"\r\n\"https://b.example/y.m3u8\",\"say \"\"hi\"\"\nline two\"\n\n")
        #expect(rows.map(\.fields) == [["Link", "Notes"], ["https://a.example/x.m3u8", "one, two"], ["https://b.example/y.m3u8", "say \"hi\"\nline two"]])
        #expect(rows.map(\.line) == [1, 2, 3])
        #expect(throws: (any Error).self) { try StreamsCSV.parse("Link\n\"open") }
        #expect(throws: (any Error).self) { try StreamsCSV.parse(String(repeating: "a\n", count: 30), maxRows: 10) }
    }

    @Test func cellsAreEscapedAgainstFormulaInjection() {
        #expect(StreamsCSV.cell("=HYPERLINK(\"http://evil\")") == "\"'=HYPERLINK(\"\"http://evil\"\")\"")
        #expect(StreamsCSV.cell("+1") == "'+1")
        #expect(StreamsCSV.cell("@SUM(A1)") == "'@SUM(A1)")
        #expect(StreamsCSV.cell("plain") == "plain")
        #expect(StreamsCSV.cell("a,b") == "\"a,b\"")
    }

    @Test func exportThenImportRoundTripsAndTheDryRunWritesNothing() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            _ = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/alpha_one","city":"Omaha","state":"NE","notes":"=cmd|' /C calc'!A0","status":"live"}"#)
            _ = try await team.editor.post("/api/v1/streams", #"{"link":"https://kick.com/beta_two","source":"Beta, \"the\" streamer","orientation":"vertical"}"#)
            let export = try await team.viewer.get("/api/v1/streams.csv")
            #expect(export.status == .ok)
            #expect(export.headers[.contentType]?.hasPrefix("text/csv") == true)
            let lines = export.text.components(separatedBy: "\r\n")
            #expect(lines.first == StreamsCSV.columns.joined(separator: ","))
            #expect(export.text.contains("'=cmd|"), "formula cells are neutralised")
            #expect(export.text.contains("\"Beta, \"\"the\"\" streamer\""))
            #expect(export.text.contains(",V,"))

            // The exported sheet imports back as "unchanged".
            let roundTrip = try await team.editor.call(.post, "/api/v1/streams/import?dry_run=true", json: export.text)
            #expect(roundTrip.status == .ok, "\(roundTrip.text)")
            #expect(roundTrip.json["summary"] as? [String: Int] == ["create": 0, "update": 0, "unchanged": 2, "error": 0], "\(roundTrip.text)")

            let sheet = """
                Link,City,State,Status,Notes,Pinned
                https://www.twitch.tv/Alpha_One,Lincoln,NE,,,
                https://youtu.be/dQw4w9WgXcQ,Reno,NV,offline,new one,yes
                not a link,,,,,
                https://kick.com/beta_two,,,,,maybe
                https://twitch.tv/alpha_one,Twice,,,,
                """
            let dry = try await team.editor.call(.post, "/api/v1/streams/import?dry_run=true", json: sheet)
            #expect(dry.json["summary"] as? [String: Int] == ["create": 1, "update": 1, "unchanged": 0, "error": 3], "\(dry.text)")
            let rows = try #require(dry.json["rows"] as? [[String: Any]])
            let update = try #require(rows.first { $0["action"] as? String == "update" })
            #expect((update["changes"] as? [String: [String: Any]])?["city"]?["before"] as? String == "Omaha")
            #expect((update["changes"] as? [String: [String: Any]])?["city"]?["after"] as? String == "Lincoln")
            #expect(rows.compactMap { $0["error"] as? String }.count == 3)
            let count = { try await app.database.sql.raw("SELECT COUNT(*) AS n FROM streams").first()?.decode(column: "n", as: Int.self) }
            #expect(try await count() == 2, "a dry run writes nothing")

            let applied = try await team.editor.call(.post, "/api/v1/streams/import", json: sheet)
            #expect(applied.json["dry_run"] as? Bool == false)
            #expect(try await count() == 3)
            let alpha = try await team.viewer.get("/api/v1/streams?link=https://twitch.tv/alpha_one")
            #expect(((alpha.json["streams"] as? [[String: Any]])?.first)?["city"] as? String == "Lincoln")
            let again = try await team.editor.call(.post, "/api/v1/streams/import?dry_run=true", json: sheet)
            #expect((again.json["summary"] as? [String: Int])?["unchanged"] == 2)

            // Bad sheets: clear errors, nothing written.
            for (body, status) in [("", HTTPResponse.Status.unprocessableContent), ("City,State\nOmaha,NE", .unprocessableContent),
                                   ("Link\n\"unterminated", .unprocessableContent)] {
                let response = try await team.editor.call(.post, "/api/v1/streams/import", json: body)
                #expect(response.status == status, "\(body): \(response.text)")
            }
            #expect(try await team.viewer.call(.post, "/api/v1/streams/import", json: sheet).status == .forbidden)
            #expect(try await team.anonymous.get("/api/v1/streams.csv").status == .unauthorized)
            #expect(try await team.viewer.get("/api/v1/streams.csv?is_archived=maybe").status == .unprocessableContent)
            #expect(try await count() == 3)
        }
    }
}
