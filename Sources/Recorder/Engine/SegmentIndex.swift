import Foundation
import HLS
import HubStore
import SQLKit

/// A segment on its way into the index.
struct IndexedSegment: Sendable {
    var recording: String
    var segment: RecordedSegment
    var sourceSequence: Int
    var size: Int
    var checksum: String
    var fetchMilliseconds: Double
    var createdAt: Double
}

/// The recording_segments table: one row per segment file.
struct SegmentIndex: Sendable {
    let database: HubDatabase

    static let columns = "sequence, file_name, duration, starts_at, discontinuity, map_file, key_tag"

    /// Inserts segments and brings the recordings' counters up to date, in one transaction. A recording that
    /// no longer wants to run is marked stopped; `desired` is never set back to running here (a stop made on
    /// another instance must not be undone by this one's flush).
    func write(_ rows: [IndexedSegment], recordings: [Recording], owner: String) async throws {
        guard !rows.isEmpty || !recordings.isEmpty else { return }
        try await database.transaction { db in
            for chunk in stride(from: 0, to: rows.count, by: 100).map({ rows[$0..<min(rows.count, $0 + 100)] }) {
                var insert = db.insert(into: "recording_segments").columns(
                    "recording_id", "sequence", "source_sequence", "file_name", "duration", "starts_at", "size", "checksum",
                    "discontinuity", "map_file", "key_tag", "fetch_ms", "created_at")
                for row in chunk {
                    insert = insert.values([
                        SQLBind(row.recording), SQLBind(row.segment.sequence), SQLBind(row.sourceSequence), SQLBind(row.segment.fileName),
                        SQLBind(row.segment.duration), SQLBind(row.segment.startsAt), SQLBind(row.size), SQLBind(row.checksum),
                        SQLBind(row.segment.discontinuity ? 1 : 0), SQLBind(row.segment.map), SQLBind(row.segment.key.map(Self.keyTag)),
                        SQLBind(row.fetchMilliseconds), SQLBind(row.createdAt),
                    ])
                }
                try await insert.ignoringConflicts().run()
            }
            for recording in recordings {
                try await Self.saveCounters(recording, owner: owner, on: db)
            }
        }
    }

    static func saveCounters(_ r: Recording, owner: String, on db: any SQLDatabase) async throws {
        try await db.raw("""
            UPDATE recordings SET state = \(bind: r.state.rawValue), error = \(bind: r.error), media_url = \(bind: r.mediaURL),
            segments = \(bind: r.segments), bytes = \(bind: r.bytes), missed = \(bind: r.missed), errors = \(bind: r.errors),
            last_segment_at = \(bind: r.lastSegmentAt), codec = \(bind: r.codec), width = \(bind: r.width), height = \(bind: r.height),
            fps = \(bind: r.fps), bitrate = \(bind: r.bitrate), stopped_at = \(bind: r.stoppedAt), updated_at = \(bind: r.updatedAt),
            desired = \(unsafeRaw: r.desiredRunning ? "desired" : "'stopped'")
            WHERE id = \(bind: r.id) AND owner = \(bind: owner)
            """).run()
    }

    /// `EXT-X-KEY` attributes, one a line.
    static func keyTag(_ key: EncryptionKey) -> String { key.attributes.joined(separator: "\n") }

    static func key(from tag: String?) -> EncryptionKey? {
        guard let tag, !tag.isEmpty else { return nil }
        let attributes = tag.split(separator: "\n").map(String.init)
        let method = attributes.first { $0.hasPrefix("METHOD=") }.map { String($0.dropFirst(7)) } ?? "NONE"
        let uri = attributes.first { $0.hasPrefix("URI=") }.map { String($0.dropFirst(4)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        return EncryptionKey(method: method, uri: uri, attributes: attributes)
    }

    static func segment(_ row: any SQLRow) throws -> RecordedSegment {
        RecordedSegment(
            sequence: try row.decode(column: "sequence", as: Int.self), fileName: try row.decode(column: "file_name", as: String.self),
            duration: try row.decode(column: "duration", as: Double.self), startsAt: try row.decode(column: "starts_at", as: Double.self),
            discontinuity: try row.decode(column: "discontinuity", as: Int.self) != 0, map: try row.decode(column: "map_file", as: String?.self),
            key: key(from: try row.decode(column: "key_tag", as: String?.self)))
    }

    /// The newest `limit` segments, oldest first.
    func recent(_ recording: String, limit: Int) async throws -> [RecordedSegment] {
        try await database.reader.raw("""
            SELECT \(unsafeRaw: Self.columns) FROM recording_segments WHERE recording_id = \(bind: recording)
            ORDER BY sequence DESC LIMIT \(bind: limit)
            """).all().map(Self.segment).reversed()
    }

    /// Discontinuities before our sequence `sequence` (the live window's DISCONTINUITY-SEQUENCE).
    func discontinuities(_ recording: String, before sequence: Int) async throws -> Int {
        try await database.reader.raw("""
            SELECT COUNT(*) AS n FROM recording_segments WHERE recording_id = \(bind: recording) AND discontinuity = 1 AND sequence < \(bind: sequence)
            """).first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Every segment overlapping [start, end), in order (segments are never longer than an hour).
    func window(_ recording: String, from start: Double, to end: Double, limit: Int = 200_000) async throws -> [RecordedSegment] {
        try await database.reader.raw("""
            SELECT \(unsafeRaw: Self.columns) FROM recording_segments WHERE recording_id = \(bind: recording)
            AND starts_at < \(bind: end) AND starts_at > \(bind: start - 3600) AND starts_at + duration > \(bind: start)
            ORDER BY sequence LIMIT \(bind: limit)
            """).all().map(Self.segment)
    }

    /// `count` segments from the one playing at `moment`.
    func starting(_ recording: String, at moment: Double, count: Int) async throws -> [RecordedSegment] {
        try await database.reader.raw("""
            SELECT \(unsafeRaw: Self.columns) FROM recording_segments WHERE recording_id = \(bind: recording)
            AND starts_at > \(bind: moment - 3600) AND starts_at + duration > \(bind: moment)
            ORDER BY sequence LIMIT \(bind: count)
            """).all().map(Self.segment)
    }

    /// The `count` segments that started before `moment`, oldest first (a live window delayed to `moment`).
    func ending(_ recording: String, before moment: Double, count: Int) async throws -> [RecordedSegment] {
        try await database.reader.raw("""
            SELECT \(unsafeRaw: Self.columns) FROM recording_segments WHERE recording_id = \(bind: recording)
            AND starts_at <= \(bind: moment) AND starts_at > \(bind: moment - 3600)
            ORDER BY sequence DESC LIMIT \(bind: count)
            """).all().map(Self.segment).reversed()
    }

    /// Every file name the index lists for a recording (segments and init sections).
    func fileNames(_ recording: String) async throws -> Set<String> {
        var names = Set<String>()
        for row in try await database.sql.raw("SELECT file_name, map_file FROM recording_segments WHERE recording_id = \(bind: recording)").all() {
            names.insert(try row.decode(column: "file_name", as: String.self))
            if let map = try row.decode(column: "map_file", as: String?.self) { names.insert(map) }
        }
        return names
    }

    /// Drops the rows of files that are gone.
    func deleteRows(_ recording: String, fileNames: [String]) async throws {
        for chunk in stride(from: 0, to: fileNames.count, by: 200).map({ Array(fileNames[$0..<min(fileNames.count, $0 + 200)]) }) {
            try await database.sql.delete(from: "recording_segments").where("recording_id", .equal, recording)
                .where("file_name", .in, chunk).run()
        }
    }

    /// Segments that ended before `cutoff` and come before our sequence `below`, oldest first.
    func expired(_ recording: String, before cutoff: Double, below: Int, limit: Int = 2_000) async throws -> [(sequence: Int, file: String, map: String?)] {
        try await database.sql.raw("""
            SELECT sequence, file_name, map_file FROM recording_segments WHERE recording_id = \(bind: recording)
            AND starts_at + duration < \(bind: cutoff) AND sequence < \(bind: below) ORDER BY sequence LIMIT \(bind: limit)
            """).all().map { row in
            (try row.decode(column: "sequence", as: Int.self), try row.decode(column: "file_name", as: String.self),
             try row.decode(column: "map_file", as: String?.self))
        }
    }

    /// Whether any remaining segment still needs an init section.
    func mapInUse(_ recording: String, _ map: String) async throws -> Bool {
        try await database.sql.raw("""
            SELECT COUNT(*) AS n FROM recording_segments WHERE recording_id = \(bind: recording) AND map_file = \(bind: map)
            """).first()?.decode(column: "n", as: Int.self) ?? 0 > 0
    }

    /// The highest sequence and its source sequence, to continue numbering after a restart.
    func last(_ recording: String) async throws -> (sequence: Int, sourceSequence: Int, endsAt: Double)? {
        guard let row = try await database.sql.raw("""
            SELECT sequence, source_sequence, starts_at, duration FROM recording_segments WHERE recording_id = \(bind: recording)
            ORDER BY sequence DESC LIMIT 1
            """).first() else { return nil }
        return (try row.decode(column: "sequence", as: Int.self), try row.decode(column: "source_sequence", as: Int.self),
                try row.decode(column: "starts_at", as: Double.self) + row.decode(column: "duration", as: Double.self))
    }
}
