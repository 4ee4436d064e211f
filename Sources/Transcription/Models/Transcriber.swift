import Foundation
import HubCore
import SQLKit

/// Where a transcriber is in its life.
public enum TranscriberState: String, Sendable, CaseIterable {
    /// Claimed, its engine starting.
    case starting
    /// Audio flows to the engine.
    case running
    /// Nothing to transcribe yet: the recording has no new segment (not started, stalled, or between segments
    /// for long), or the transcriber waits for an instance to take it.
    case waiting
    /// The engine or the audio failed; it is retried with backoff (see `error`).
    case error
    /// Its recording ended and every segment was transcribed.
    case finished
    /// Stopped by a user.
    case stopped
}

/// One transcriber: speech to text from a recording's audio, as stored and as the API shows it.
public struct Transcriber: Sendable, Equatable {
    public var id: String
    public var recordingID: String
    public var sourceURL: String?
    public var language: String
    public var communityID: Int64?
    public var wakeWords: [String]
    public var engine: String
    public var desiredRunning: Bool
    public var state: TranscriberState
    public var error: String?
    public var sessionID: String?
    /// The recording's last segment (our sequence) fed to the engine; -1: none yet.
    public var position: Int
    public var audioSeconds: Double = 0
    public var utterances = 0
    public var wakeWordsHeard = 0
    public var engineRestarts = 0
    public var decodeErrors = 0
    public var badLines = 0
    public var lastTextAt: Double?
    public var createdBy: String?
    public var createdAt: Double
    public var updatedAt: Double
    public var stoppedAt: Double?
    public var owner: String?

    static let columns = "id, recording_id, source_url, language, community_id, wake_words, engine, desired, state, error, session_id, position, "
        + "audio_seconds, utterances, wake_words_heard, engine_restarts, decode_errors, bad_lines, last_text_at, created_by, created_at, "
        + "updated_at, stopped_at, owner"

    init(id: String, recordingID: String, sourceURL: String?, language: String, communityID: Int64?, wakeWords: [String], engine: String,
         position: Int, createdBy: String?, now: Double) {
        self.id = id
        self.recordingID = recordingID
        self.sourceURL = sourceURL
        self.language = language
        self.communityID = communityID
        self.wakeWords = wakeWords
        self.engine = engine
        self.desiredRunning = true
        self.state = .waiting
        self.position = position
        self.createdBy = createdBy
        self.createdAt = now
        self.updatedAt = now
    }

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: String.self)
        recordingID = try row.decode(column: "recording_id", as: String.self)
        sourceURL = try row.decode(column: "source_url", as: String?.self)
        language = try row.decode(column: "language", as: String.self)
        communityID = try row.decode(column: "community_id", as: Int64?.self)
        let words = try row.decode(column: "wake_words", as: String.self)
        wakeWords = (try? JSONDecoder().decode([String].self, from: Data(words.utf8))) ?? []
        engine = try row.decode(column: "engine", as: String.self)
        desiredRunning = try row.decode(column: "desired", as: String.self) == "running"
        state = TranscriberState(rawValue: try row.decode(column: "state", as: String.self)) ?? .error
        error = try row.decode(column: "error", as: String?.self)
        sessionID = try row.decode(column: "session_id", as: String?.self)
        position = try row.decode(column: "position", as: Int.self)
        audioSeconds = try row.decode(column: "audio_seconds", as: Double.self)
        utterances = try row.decode(column: "utterances", as: Int.self)
        wakeWordsHeard = try row.decode(column: "wake_words_heard", as: Int.self)
        engineRestarts = try row.decode(column: "engine_restarts", as: Int.self)
        decodeErrors = try row.decode(column: "decode_errors", as: Int.self)
        badLines = try row.decode(column: "bad_lines", as: Int.self)
        lastTextAt = try row.decode(column: "last_text_at", as: Double?.self)
        createdBy = try row.decode(column: "created_by", as: String?.self)
        createdAt = try row.decode(column: "created_at", as: Double.self)
        updatedAt = try row.decode(column: "updated_at", as: Double.self)
        stoppedAt = try row.decode(column: "stopped_at", as: Double?.self)
        owner = try row.decode(column: "owner", as: String?.self)
    }

    var wakeWordsJSON: String { JSONText.render(.strings(wakeWords)) }

    /// The API's JSON object.
    public var json: String {
        JSONText.object([
            ("id", .string(id)), ("recording_id", .string(recordingID)), ("source_url", sourceURL.map { .string($0) } ?? .null),
            ("language", .string(language)), ("community_id", communityID.map { .int(Int($0)) } ?? .null),
            ("wake_words", .strings(wakeWords)), ("engine", .string(engine)), ("desired", .string(desiredRunning ? "running" : "stopped")),
            ("state", .string(state.rawValue)), ("error", error.map { .string($0) } ?? .null),
            ("session_id", sessionID.map { .string($0) } ?? .null), ("position", .int(position)),
            ("audio_seconds", .double((audioSeconds * 10).rounded() / 10)), ("utterances", .int(utterances)),
            ("wake_words_heard", .int(wakeWordsHeard)), ("engine_restarts", .int(engineRestarts)), ("decode_errors", .int(decodeErrors)),
            ("bad_lines", .int(badLines)), ("last_text_at", Timestamp.jsonValue(lastTextAt)), ("owner", owner.map { .string($0) } ?? .null),
            ("created_by", createdBy.map { .string($0) } ?? .null), ("created_at", Timestamp.jsonValue(createdAt)),
            ("updated_at", Timestamp.jsonValue(updatedAt)), ("stopped_at", Timestamp.jsonValue(stoppedAt)),
        ])
    }
}

/// Transcriber ids: 128 random bits in hex.
enum TranscriberID {
    static func make() -> String { RequestID.make() }

    static func isValid(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}
