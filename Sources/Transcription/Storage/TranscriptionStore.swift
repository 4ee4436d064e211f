import Foundation
import HubCore
import HubStore
import SQLKit

/// A stored transcript line: one final utterance of a recording.
public struct TranscriptLine: Sendable, Equatable {
    public var transcriberID: String
    public var recordingID: String
    public var sessionID: String
    public var startsAt: Double
    public var endsAt: Double
    public var text: String
    public var confidence: Double?

    static let columns = "transcriber_id, recording_id, session_id, starts_at, ends_at, text, confidence"

    init(transcriberID: String, recordingID: String, sessionID: String, startsAt: Double, endsAt: Double, text: String, confidence: Double?) {
        self.transcriberID = transcriberID
        self.recordingID = recordingID
        self.sessionID = sessionID
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.text = text
        self.confidence = confidence
    }

    init(row: any SQLRow) throws {
        transcriberID = try row.decode(column: "transcriber_id", as: String.self)
        recordingID = try row.decode(column: "recording_id", as: String.self)
        sessionID = try row.decode(column: "session_id", as: String.self)
        startsAt = try row.decode(column: "starts_at", as: Double.self)
        endsAt = try row.decode(column: "ends_at", as: Double.self)
        text = try row.decode(column: "text", as: String.self)
        confidence = try row.decode(column: "confidence", as: Double?.self)
    }

    func json(extra: [(String, JSONText.Value)] = []) -> String {
        JSONText.object([
            ("recording_id", .string(recordingID)), ("transcriber_id", .string(transcriberID)), ("session_id", .string(sessionID)),
            ("starts_at", .string(Timestamp.iso8601(startsAt))), ("ends_at", .string(Timestamp.iso8601(endsAt))),
            ("start", .double((startsAt * 1000).rounded() / 1000)), ("end", .double((endsAt * 1000).rounded() / 1000)),
            ("text", .string(text)), ("confidence", confidence.map { .double($0) } ?? .null),
        ] + extra)
    }

    /// Lower case letters, digits and apostrophes, words separated by one space: what search compares.
    static func searchForm(_ text: String) -> String {
        var out = ""
        var space = false
        for character in text.lowercased() {
            if character.isLetter || character.isNumber || character == "'" {
                if space && !out.isEmpty { out.append(" ") }
                space = false
                out.append(character)
            } else {
                space = true
            }
        }
        return out
    }
}

/// The transcribers and transcript tables.
public struct TranscriptionStore: Sendable {
    let database: HubDatabase

    public init(database: HubDatabase) {
        self.database = database
    }

    func insert(_ transcriber: Transcriber) async throws {
        try await database.sql.raw("""
            INSERT INTO transcribers (id, recording_id, source_url, language, community_id, wake_words, engine, desired, state, position,
            created_by, created_at, updated_at) VALUES (\(bind: transcriber.id), \(bind: transcriber.recordingID), \(bind: transcriber.sourceURL),
            \(bind: transcriber.language), \(bind: transcriber.communityID), \(bind: transcriber.wakeWordsJSON), \(bind: transcriber.engine),
            'running', \(bind: transcriber.state.rawValue), \(bind: transcriber.position), \(bind: transcriber.createdBy),
            \(bind: transcriber.createdAt), \(bind: transcriber.updatedAt))
            """).run()
    }

    public func get(_ id: String) async throws -> Transcriber? {
        guard TranscriberID.isValid(id) else { return nil }
        return try await database.reader.raw("SELECT \(unsafeRaw: Transcriber.columns) FROM transcribers WHERE id = \(bind: id)").first()
            .map(Transcriber.init(row:))
    }

    public func list(recording: String? = nil, limit: Int = 500) async throws -> [Transcriber] {
        if let recording {
            return try await database.reader.raw("""
                SELECT \(unsafeRaw: Transcriber.columns) FROM transcribers WHERE recording_id = \(bind: recording) ORDER BY created_at DESC LIMIT \(bind: limit)
                """).all().map(Transcriber.init(row:))
        }
        return try await database.reader.raw("SELECT \(unsafeRaw: Transcriber.columns) FROM transcribers ORDER BY created_at DESC LIMIT \(bind: limit)")
            .all().map(Transcriber.init(row:))
    }

    /// Sets whether a transcriber should run; answers it, or nil when there is none.
    public func setDesired(_ id: String, running: Bool, now: Double = Timestamp.now()) async throws -> Transcriber? {
        guard TranscriberID.isValid(id) else { return nil }
        if running {
            try await database.sql.raw("""
                UPDATE transcribers SET desired = 'running', state = 'waiting', error = NULL, stopped_at = NULL, lease_until = 0, updated_at = \(bind: now)
                WHERE id = \(bind: id) AND desired = 'stopped'
                """).run()
        } else {
            try await database.sql.raw("""
                UPDATE transcribers SET desired = 'stopped', state = CASE WHEN state = 'finished' THEN state ELSE 'stopped' END,
                stopped_at = COALESCE(stopped_at, \(bind: now)), updated_at = \(bind: now) WHERE id = \(bind: id)
                """).run()
        }
        return try await get(id)
    }

    /// Saves a running transcriber's state and counters (only while this instance owns it).
    func save(_ t: Transcriber, owner: String) async throws {
        try await database.sql.raw("""
            UPDATE transcribers SET state = \(bind: t.state.rawValue), error = \(bind: t.error), session_id = \(bind: t.sessionID),
            position = \(bind: t.position), audio_seconds = \(bind: t.audioSeconds), utterances = \(bind: t.utterances),
            wake_words_heard = \(bind: t.wakeWordsHeard), engine_restarts = \(bind: t.engineRestarts), decode_errors = \(bind: t.decodeErrors),
            bad_lines = \(bind: t.badLines), last_text_at = \(bind: t.lastTextAt), updated_at = \(bind: t.updatedAt),
            desired = \(unsafeRaw: t.state == .finished ? "'stopped'" : "desired"), stopped_at = \(bind: t.stoppedAt)
            WHERE id = \(bind: t.id) AND owner = \(bind: owner)
            """).run()
    }

    func addLine(_ line: TranscriptLine, now: Double = Timestamp.now()) async throws {
        try await database.sql.raw("""
            INSERT INTO transcript_lines (transcriber_id, recording_id, session_id, starts_at, ends_at, text, search_text, confidence, created_at)
            VALUES (\(bind: line.transcriberID), \(bind: line.recordingID), \(bind: line.sessionID), \(bind: line.startsAt), \(bind: line.endsAt),
            \(bind: line.text), \(bind: TranscriptLine.searchForm(line.text)), \(bind: line.confidence), \(bind: now))
            """).run()
    }

    /// The lines of a recording that start in [from, to), in time order.
    public func transcript(recording: String, from: Double, to: Double, limit: Int = 5_000) async throws -> [TranscriptLine] {
        try await database.reader.raw("""
            SELECT \(unsafeRaw: TranscriptLine.columns) FROM transcript_lines WHERE recording_id = \(bind: recording)
            AND starts_at >= \(bind: from) AND starts_at < \(bind: to) ORDER BY starts_at, id LIMIT \(bind: limit)
            """).all().map(TranscriptLine.init(row:))
    }

    /// Lines containing `phrase` (compared in ``TranscriptLine/searchForm(_:)``), newest first.
    public func search(_ phrase: String, recording: String? = nil, limit: Int) async throws -> [TranscriptLine] {
        let form = TranscriptLine.searchForm(phrase)
        guard !form.isEmpty else { return [] }
        let pattern = "%" + form.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
        let scope: SQLQueryString = recording.map { "AND recording_id = \(bind: $0)" } ?? ""
        return try await database.reader.raw("""
            SELECT \(unsafeRaw: TranscriptLine.columns) FROM transcript_lines WHERE search_text LIKE \(bind: pattern) ESCAPE '\\' \(scope)
            ORDER BY starts_at DESC, id DESC LIMIT \(bind: limit)
            """).all().map(TranscriptLine.init(row:))
    }

    /// Deletes lines older than their recording's retention; answers how many.
    @discardableResult
    func sweep(now: Double = Timestamp.now()) async throws -> Int {
        let rows = try await database.sql.raw("""
            DELETE FROM transcript_lines WHERE id IN (SELECT l.id FROM transcript_lines l JOIN recordings r ON r.id = l.recording_id
            WHERE l.ends_at < \(bind: now) - r.retention LIMIT 10000) RETURNING id
            """).all()
        return rows.count
    }
}
