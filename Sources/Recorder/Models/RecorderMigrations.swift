import HubStore
import SQLKit

/// The recorder's tables. Times are seconds since 1970 (DOUBLE PRECISION); flags are 0/1 integers.
public enum RecorderMigrations {
    public static let all: [any Migration] = [CreateRecorderTables()]
}

struct CreateRecorderTables: Migration {
    let name = "0400-recorder-tables"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let statements = [
            """
            CREATE TABLE recordings (
                id TEXT PRIMARY KEY,
                source_url TEXT NOT NULL,
                input_kind TEXT NOT NULL,
                media_url TEXT,
                stream_id BIGINT REFERENCES streams (id) ON DELETE SET NULL,
                variant TEXT NOT NULL,
                retention DOUBLE PRECISION NOT NULL,
                state TEXT NOT NULL,
                desired TEXT NOT NULL,
                error TEXT,
                segments BIGINT NOT NULL DEFAULT 0,
                bytes BIGINT NOT NULL DEFAULT 0,
                missed BIGINT NOT NULL DEFAULT 0,
                errors BIGINT NOT NULL DEFAULT 0,
                last_segment_at DOUBLE PRECISION,
                codec TEXT,
                width INTEGER,
                height INTEGER,
                fps DOUBLE PRECISION,
                bitrate BIGINT,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                started_at DOUBLE PRECISION,
                stopped_at DOUBLE PRECISION,
                updated_at DOUBLE PRECISION NOT NULL,
                owner TEXT,
                lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX recordings_desired ON recordings (desired, lease_until)",
            "CREATE INDEX recordings_stream ON recordings (stream_id)",
            """
            CREATE TABLE recording_segments (
                recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
                sequence BIGINT NOT NULL,
                source_sequence BIGINT NOT NULL,
                file_name TEXT NOT NULL,
                duration DOUBLE PRECISION NOT NULL,
                starts_at DOUBLE PRECISION NOT NULL,
                size BIGINT NOT NULL,
                checksum TEXT NOT NULL,
                discontinuity INTEGER NOT NULL DEFAULT 0,
                map_file TEXT,
                key_tag TEXT,
                fetch_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (recording_id, sequence)
            )
            """,
            "CREATE INDEX recording_segments_time ON recording_segments (recording_id, starts_at)",
            """
            CREATE TABLE recording_exports (
                id TEXT PRIMARY KEY,
                recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
                starts_at DOUBLE PRECISION NOT NULL,
                duration DOUBLE PRECISION NOT NULL,
                format TEXT NOT NULL,
                state TEXT NOT NULL,
                progress DOUBLE PRECISION NOT NULL DEFAULT 0,
                error TEXT,
                file_name TEXT,
                size BIGINT,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                finished_at DOUBLE PRECISION
            )
            """,
            "CREATE INDEX recording_exports_recording ON recording_exports (recording_id, created_at)",
        ]
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }
}
