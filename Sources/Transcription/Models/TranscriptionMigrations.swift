import HubStore
import SQLKit

/// The transcription tables. Times are seconds since 1970 (DOUBLE PRECISION).
public enum TranscriptionMigrations {
    public static let all: [any Migration] = [CreateTranscriptionTables()]
}

struct CreateTranscriptionTables: Migration {
    let name = "0800-transcription-tables"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let id = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        let statements = [
            """
            CREATE TABLE transcribers (
                id TEXT PRIMARY KEY,
                recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
                source_url TEXT,
                language TEXT NOT NULL,
                community_id BIGINT,
                wake_words TEXT NOT NULL,
                engine TEXT NOT NULL,
                desired TEXT NOT NULL,
                state TEXT NOT NULL,
                error TEXT,
                session_id TEXT,
                position BIGINT NOT NULL,
                audio_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
                utterances BIGINT NOT NULL DEFAULT 0,
                wake_words_heard BIGINT NOT NULL DEFAULT 0,
                engine_restarts BIGINT NOT NULL DEFAULT 0,
                decode_errors BIGINT NOT NULL DEFAULT 0,
                bad_lines BIGINT NOT NULL DEFAULT 0,
                last_text_at DOUBLE PRECISION,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                stopped_at DOUBLE PRECISION,
                owner TEXT,
                lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX transcribers_desired ON transcribers (desired, lease_until)",
            "CREATE INDEX transcribers_recording ON transcribers (recording_id)",
            """
            CREATE TABLE transcript_lines (
                id \(id),
                transcriber_id TEXT NOT NULL,
                recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
                session_id TEXT NOT NULL,
                starts_at DOUBLE PRECISION NOT NULL,
                ends_at DOUBLE PRECISION NOT NULL,
                text TEXT NOT NULL,
                search_text TEXT NOT NULL,
                confidence DOUBLE PRECISION,
                created_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX transcript_lines_time ON transcript_lines (recording_id, starts_at)",
            "CREATE INDEX transcript_lines_transcriber ON transcript_lines (transcriber_id)",
        ]
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }
}
