import Foundation
import HubCore
import HubStore
import HubTestSupport
import Logging
import StreamHub
import Testing
@testable import Transcription

/// The transcription tables on both backends: transcribers and their desired state, transcript windows,
/// search (case, punctuation and LIKE metacharacters), and retention that follows the recording's.
@Suite struct TranscriptionStoreTests {
    func withStore(_ backend: TestDatabases.Backend, _ body: (TranscriptionStore, HubDatabase) async throws -> Void) async throws {
        try await TestDatabases.withMigrated(backend, allStreamHubMigrations) { database, _ in
            try await body(TranscriptionStore(database: database), database)
        }
    }

    static func addRecording(_ id: String, retention: Double, on database: HubDatabase) async throws {
        try await database.sql.raw("""
            INSERT INTO recordings (id, source_url, input_kind, variant, retention, state, desired, created_at, updated_at)
            VALUES (\(bind: id), 'http://example.com/live.m3u8', 'hls', 'best', \(bind: retention), 'recording', 'running', 0, 0)
            """).run()
    }

    @Test(arguments: TestDatabases.available)
    func transcribersLinesSearchAndRetention(backend: TestDatabases.Backend) async throws {
        try await withStore(backend) { store, database in
            let recording = String(repeating: "a", count: 32)
            let other = String(repeating: "b", count: 32)
            try await Self.addRecording(recording, retention: 3_600, on: database)
            try await Self.addRecording(other, retention: 60, on: database)
            let transcriber = Transcriber(id: TranscriberID.make(), recordingID: recording, sourceURL: nil, language: "en-US", communityID: 7,
                                          wakeWords: ["hey hub", "quote\"d"], engine: "pocketsphinx", position: 41, createdBy: "user:a", now: 100)
            try await store.insert(transcriber)
            let read = try #require(try await store.get(transcriber.id))
            #expect(read.wakeWords == ["hey hub", "quote\"d"] && read.position == 41 && read.desiredRunning && read.state == .waiting)
            #expect(try await store.get("not-an-id") == nil)
            #expect(try await store.get(TranscriberID.make()) == nil)

            let stopped = try #require(try await store.setDesired(transcriber.id, running: false, now: 200))
            #expect(!stopped.desiredRunning && stopped.state == .stopped && stopped.stoppedAt == 200)
            let again = try #require(try await store.setDesired(transcriber.id, running: true, now: 300))
            #expect(again.desiredRunning && again.state == .waiting && again.stoppedAt == nil)

            let now = Timestamp.now()
            let lines = [
                (recording, now - 7_200, "Old news from two hours ago"),
                (recording, now - 30, "The warehouse FIRE is out."),
                (recording, now - 20, "100% of the 5_star crew"),
                (other, now - 120, "a warehouse fire elsewhere"),
            ]
            for (id, start, text) in lines {
                try await store.addLine(TranscriptLine(transcriberID: transcriber.id, recordingID: id, sessionID: "s", startsAt: start, endsAt: start + 2,
                                                       text: text, confidence: 0.9))
            }
            let window = try await store.transcript(recording: recording, from: now - 100, to: now)
            #expect(window.map(\.text) == ["The warehouse FIRE is out.", "100% of the 5_star crew"])
            #expect(try await store.search("Warehouse, fire!", limit: 10).map(\.recordingID) == [recording, other], "newest first, both recordings")
            #expect(try await store.search("warehouse fire", recording: other, limit: 10).count == 1)
            #expect(try await store.search("%", limit: 10).isEmpty, "punctuation alone finds nothing")
            #expect(try await store.search("5_star", limit: 10).count == 1)
            #expect(try await store.search("5xstar", limit: 10).isEmpty, "_ is not a wildcard")
            #expect(try await store.search("' OR 1=1 --", limit: 10).isEmpty)

            // Retention follows the recording's: the two-hour-old line (retention 1 h) and the other recording's
            // two-minute-old line (retention 60 s) go.
            #expect(try await store.sweep() == 2)
            #expect(try await store.transcript(recording: recording, from: 0, to: now + 1).count == 2)
            #expect(try await store.transcript(recording: other, from: 0, to: now + 1).isEmpty)
            // Deleting the recording deletes its transcribers and transcript.
            try await database.sql.raw("DELETE FROM recordings WHERE id = \(bind: recording)").run()
            #expect(try await store.get(transcriber.id) == nil)
            #expect(try await store.transcript(recording: recording, from: 0, to: now + 1).isEmpty)
        }
    }
}
