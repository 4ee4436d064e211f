import HubStore
import SQLKit

/// The Stream Manager's tables. Times are seconds since 1970 (DOUBLE PRECISION).
public enum ProgramMigrations {
    public static let all: [any Migration] = [CreateProgramTables(), CreateProgramOutputs(), AddProgramChatChannels(), CreateProgramImages()]
}

struct CreateProgramTables: Migration {
    let name = "0700-program-tables"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let id = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        let statements = [
            """
            CREATE TABLE programs (
                name TEXT PRIMARY KEY,
                title TEXT,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL,
                fps INTEGER NOT NULL,
                video_bitrate INTEGER NOT NULL,
                preset TEXT NOT NULL,
                audio_layer BIGINT,
                state TEXT NOT NULL DEFAULT 'stopped',
                version BIGINT NOT NULL DEFAULT 1,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
            """
            CREATE TABLE program_layers (
                id \(id),
                program TEXT NOT NULL REFERENCES programs (name) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                z INTEGER NOT NULL,
                visible BOOLEAN NOT NULL,
                x INTEGER NOT NULL,
                y INTEGER NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL,
                opacity DOUBLE PRECISION NOT NULL,
                text TEXT,
                stream_id BIGINT,
                recording_id TEXT,
                url TEXT,
                community_id BIGINT,
                wall TEXT,
                image_id TEXT,
                style TEXT,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX program_layers_program ON program_layers (program)",
        ]
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }
}

/// RTMP push targets (`url` holds the stream key: never returned in full, never logged).
struct CreateProgramOutputs: Migration {
    let name = "0701-program-outputs"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let id = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        let table = """
            CREATE TABLE program_outputs (
                id \(id),
                program TEXT NOT NULL REFERENCES programs (name) ON DELETE CASCADE,
                url TEXT NOT NULL,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )
            """
        try await database.raw(SQLQueryString(table)).run()
        try await database.raw("CREATE INDEX program_outputs_program ON program_outputs (program)").run()
    }
}

/// The chat channels a program's `chat` channel follows (a JSON array of `source:channel`).
struct AddProgramChatChannels: Migration {
    let name = "0702-program-chat-channels"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("ALTER TABLE programs ADD COLUMN chat_channels TEXT").run()
    }
}

/// Uploaded images (the bytes too: every instance renders from the same table), layers' crop and a source
/// layer's delay behind live.
struct CreateProgramImages: Migration {
    let name = "0703-program-images"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let table = """
            CREATE TABLE program_images (
                id TEXT PRIMARY KEY,
                name TEXT,
                format TEXT NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL,
                size INTEGER NOT NULL,
                sha256 TEXT NOT NULL UNIQUE,
                data \(kind == .postgres ? "BYTEA" : "BLOB") NOT NULL,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )
            """
        try await database.raw(SQLQueryString(table)).run()
        try await database.raw("ALTER TABLE program_layers ADD COLUMN crop TEXT").run()
        try await database.raw("ALTER TABLE program_layers ADD COLUMN rewind_seconds INTEGER").run()
        try await database.raw("CREATE INDEX program_layers_image ON program_layers (image_id)").run()
    }
}
