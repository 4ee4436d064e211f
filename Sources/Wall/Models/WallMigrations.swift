import HubStore
import SQLKit

/// The wall's tables. Times are seconds since 1970 (DOUBLE PRECISION).
public enum WallMigrations {
    public static let all: [any Migration] = [CreateWallTables(), CreateWallLinks()]
}

struct CreateWallTables: Migration {
    let name = "0600-wall-tables"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let statements = [
            """
            CREATE TABLE walls (
                name TEXT PRIMARY KEY,
                title TEXT,
                columns INTEGER NOT NULL,
                rows INTEGER NOT NULL,
                audio_cell INTEGER,
                volume DOUBLE PRECISION NOT NULL DEFAULT 1,
                version BIGINT NOT NULL DEFAULT 1,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
            """
            CREATE TABLE wall_cells (
                wall TEXT NOT NULL REFERENCES walls (name) ON DELETE CASCADE,
                cell INTEGER NOT NULL,
                stream_id BIGINT,
                recording_id TEXT,
                url TEXT,
                fallback_stream_id BIGINT,
                rewind_seconds INTEGER,
                blurred BOOLEAN NOT NULL DEFAULT FALSE,
                rotation INTEGER NOT NULL DEFAULT 0,
                updated_by TEXT,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (wall, cell)
            )
            """,
        ]
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }
}

/// Invite and display links: scoped tokens, stored as SHA-256 hashes only.
struct CreateWallLinks: Migration {
    let name = "0601-wall-links"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let id = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        let statements = [
            """
            CREATE TABLE wall_links (
                id \(id),
                wall TEXT NOT NULL REFERENCES walls (name) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                access TEXT NOT NULL,
                label TEXT,
                token_hash TEXT NOT NULL UNIQUE,
                prefix TEXT NOT NULL,
                expires_at DOUBLE PRECISION,
                max_uses INTEGER,
                uses INTEGER NOT NULL DEFAULT 0,
                revoked_at DOUBLE PRECISION,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                last_used_at DOUBLE PRECISION
            )
            """,
            "CREATE INDEX wall_links_wall ON wall_links (wall)",
        ]
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }
}
