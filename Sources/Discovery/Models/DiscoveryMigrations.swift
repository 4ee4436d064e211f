import HubStore
import SQLKit

/// Discovery's and the status checker's tables. Times are seconds since 1970 (DOUBLE PRECISION).
public enum DiscoveryMigrations {
    public static let all: [any Migration] = [CreateDiscoveryTables(), AddCheckHost(), CreateChatMessagesSeen()]
}

struct CreateDiscoveryTables: Migration {
    let name = "0300-discovery-tables"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let id = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        let statements = [
            """
            CREATE TABLE ignore_entries (
                id \(id),
                type TEXT NOT NULL,
                value TEXT NOT NULL,
                note TEXT,
                created_by TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (type, value)
            )
            """,
            """
            CREATE TABLE stream_sightings (
                id \(id),
                stream_id BIGINT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
                source TEXT NOT NULL,
                channel TEXT,
                author TEXT,
                seen_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX stream_sightings_stream ON stream_sightings (stream_id, seen_at)",
            "CREATE INDEX stream_sightings_seen ON stream_sightings (seen_at)",
            """
            CREATE TABLE stream_checks (
                id \(id),
                stream_id BIGINT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
                checked_at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL,
                method TEXT NOT NULL,
                reason TEXT,
                latency_ms DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX stream_checks_stream ON stream_checks (stream_id, checked_at)",
            "CREATE INDEX stream_checks_checked ON stream_checks (checked_at)",
            """
            CREATE TABLE stream_check_state (
                stream_id BIGINT PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
                next_check_at DOUBLE PRECISION NOT NULL,
                failures INTEGER NOT NULL DEFAULT 0,
                claimed_by TEXT,
                claimed_until DOUBLE PRECISION,
                fingerprint TEXT,
                fingerprint_at DOUBLE PRECISION
            )
            """,
            "CREATE INDEX stream_check_state_due ON stream_check_state (next_check_at)",
        ]
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }
}

/// The host (`host:port`) each scheduled check goes to, so the scheduler can share check slots fairly
/// between hosts.
struct AddCheckHost: Migration {
    let name = "0301-check-host"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("ALTER TABLE stream_check_state ADD COLUMN host TEXT NOT NULL DEFAULT ''").run()
        try await database.raw("CREATE INDEX stream_check_state_host ON stream_check_state (host, next_check_at)").run()
    }
}

/// Chat messages already ingested, by the chat service's own id: a message seen twice (a connector that
/// moved to another instance, a gateway replaying on resume) is ingested once. Kept for a day.
struct CreateChatMessagesSeen: Migration {
    let name = "0302-chat-messages-seen"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("""
            CREATE TABLE chat_messages_seen (
                source TEXT NOT NULL,
                channel TEXT NOT NULL,
                message_id TEXT NOT NULL,
                seen_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (source, channel, message_id)
            )
            """).run()
        try await database.raw("CREATE INDEX chat_messages_seen_at ON chat_messages_seen (seen_at)").run()
    }
}
