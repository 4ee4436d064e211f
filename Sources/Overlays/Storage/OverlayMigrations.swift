import HubStore
import SQLKit

/// The overlays' tables. Times are seconds since 1970 (DOUBLE PRECISION) on both backends.
public enum OverlayMigrations {
    public static let all: [any Migration] = [CreateOverlayTables()]
}

struct CreateOverlayTables: Migration {
    let name = "0200-overlay-tables"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let id = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        let statements = [
            """
            CREATE TABLE communities (
                id \(id),
                name TEXT NOT NULL UNIQUE,
                created_at DOUBLE PRECISION NOT NULL
            )
            """,
            """
            CREATE TABLE overlay_keys (
                community_id BIGINT PRIMARY KEY REFERENCES communities (id) ON DELETE CASCADE,
                current_hash TEXT NOT NULL UNIQUE,
                current_prefix TEXT NOT NULL,
                previous_hash TEXT,
                previous_prefix TEXT,
                rotated_at DOUBLE PRECISION,
                created_at DOUBLE PRECISION NOT NULL,
                rotate_every DOUBLE PRECISION,
                next_rotation_at DOUBLE PRECISION
            )
            """,
            "CREATE INDEX overlay_keys_previous ON overlay_keys (previous_hash)",
            """
            CREATE TABLE browser_sources (
                id \(id),
                community_id BIGINT NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                url TEXT,
                stream_id BIGINT,
                recording_id TEXT,
                x INTEGER NOT NULL DEFAULT 0,
                y INTEGER NOT NULL DEFAULT 0,
                width INTEGER NOT NULL DEFAULT 1920,
                height INTEGER NOT NULL DEFAULT 1080,
                z INTEGER NOT NULL DEFAULT 0,
                visible BOOLEAN NOT NULL DEFAULT TRUE,
                style TEXT NOT NULL DEFAULT '{}',
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX browser_sources_community ON browser_sources (community_id, z)",
            """
            CREATE TABLE caption_events (
                id \(id),
                community_id BIGINT NOT NULL,
                text TEXT NOT NULL,
                username TEXT,
                original TEXT,
                translated TEXT,
                detected_lang TEXT,
                target_lang TEXT,
                confidence DOUBLE PRECISION,
                is_final BOOLEAN NOT NULL,
                platform TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX caption_events_community ON caption_events (community_id, created_at)",
            "CREATE INDEX caption_events_created ON caption_events (created_at)",
            """
            CREATE TABLE overlay_access_log (
                id \(id),
                community_id BIGINT,
                key_prefix TEXT NOT NULL,
                ip TEXT,
                user_agent TEXT,
                path TEXT NOT NULL,
                sources_served INTEGER NOT NULL DEFAULT 0,
                result TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX overlay_access_log_community ON overlay_access_log (community_id, at)",
            "CREATE INDEX overlay_access_log_at ON overlay_access_log (at)",
        ]
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }
}
