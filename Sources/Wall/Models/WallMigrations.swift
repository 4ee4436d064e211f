import HubStore
import SQLKit

/// The wall's tables. Times are seconds since 1970 (DOUBLE PRECISION).
public enum WallMigrations {
    public static let all: [any Migration] = [CreateWallTables()]
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
