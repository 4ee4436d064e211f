import HubStore
import SQLKit

/// The registry's tables. Times are seconds since 1970 (DOUBLE PRECISION) on both backends.
public enum RegistryMigrations {
    public static let all: [any Migration] = [CreateRegistryTables(), KeepPostedLinks()]
}

struct CreateRegistryTables: Migration {
    let name = "0100-registry-tables"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        let id = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        let statements = [
            """
            CREATE TABLE streamers (
                id \(id),
                name TEXT NOT NULL,
                notes TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX streamers_name ON streamers (name)",
            """
            CREATE TABLE streamer_accounts (
                id \(id),
                streamer_id BIGINT NOT NULL REFERENCES streamers (id) ON DELETE CASCADE,
                platform TEXT NOT NULL,
                handle TEXT NOT NULL,
                link TEXT,
                UNIQUE (platform, handle)
            )
            """,
            "CREATE INDEX streamer_accounts_streamer ON streamer_accounts (streamer_id)",
            """
            CREATE TABLE streams (
                id \(id),
                link TEXT NOT NULL UNIQUE,
                source TEXT,
                platform TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'unknown',
                title TEXT,
                city TEXT,
                state TEXT,
                notes TEXT,
                is_pinned BOOLEAN NOT NULL DEFAULT FALSE,
                is_archived BOOLEAN NOT NULL DEFAULT FALSE,
                posted_by TEXT,
                kind TEXT NOT NULL DEFAULT 'video',
                orientation TEXT,
                streamer_id BIGINT REFERENCES streamers (id) ON DELETE SET NULL,
                started_at DOUBLE PRECISION,
                ended_at DOUBLE PRECISION,
                last_checked_at DOUBLE PRECISION,
                last_live_at DOUBLE PRECISION,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                version BIGINT NOT NULL DEFAULT 1
            )
            """,
            "CREATE INDEX streams_archived_created ON streams (is_archived, created_at)",
            "CREATE INDEX streams_status ON streams (status, is_archived)",
            "CREATE INDEX streams_platform ON streams (platform, is_archived)",
            "CREATE INDEX streams_pinned ON streams (is_pinned, is_archived)",
            "CREATE INDEX streams_city ON streams (city)",
            "CREATE INDEX streams_state ON streams (state)",
            "CREATE INDEX streams_streamer ON streams (streamer_id)",
            "CREATE INDEX streams_updated ON streams (updated_at)",
            """
            CREATE TABLE users (
                id \(id),
                email TEXT NOT NULL,
                email_key TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                role TEXT NOT NULL,
                disabled BOOLEAN NOT NULL DEFAULT FALSE,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )
            """,
            """
            CREATE TABLE api_keys (
                id \(id),
                name TEXT NOT NULL,
                key_hash TEXT NOT NULL UNIQUE,
                key_prefix TEXT NOT NULL,
                role TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                last_used_at DOUBLE PRECISION,
                revoked BOOLEAN NOT NULL DEFAULT FALSE
            )
            """,
            """
            CREATE TABLE feature_flags (
                name TEXT PRIMARY KEY,
                enabled BOOLEAN NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                updated_by TEXT,
                updated_at DOUBLE PRECISION
            )
            """,
            """
            CREATE TABLE audit_log (
                id \(id),
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                entity TEXT NOT NULL,
                entity_id TEXT,
                changes TEXT NOT NULL,
                request_id TEXT,
                at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX audit_log_at ON audit_log (at)",
            "CREATE INDEX audit_log_entity ON audit_log (entity, at)",
            "CREATE INDEX audit_log_actor ON audit_log (actor, at)",
            "CREATE TABLE revoked_tokens (jti TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)",
            """
            CREATE TABLE registry_changes (
                id \(id),
                type TEXT NOT NULL,
                body TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL
            )
            """,
            "INSERT INTO feature_flags (name, enabled, description) VALUES ('signups', FALSE, 'Anyone may create a viewer account at POST /api/v1/users/signup')",
            "INSERT INTO feature_flags (name, enabled, description) VALUES ('auto_archive', FALSE, 'Archive streams that have been offline for longer than the configured time')",
        ]
        for statement in statements {
            try await database.raw(SQLQueryString(statement)).run()
        }
    }
}

/// Links are kept as posted (`posted_link`, null when the posted form is already canonical) beside their
/// canonical form (`link`, still the unique key). Rows from before keep their canonical link as the one shown.
struct KeepPostedLinks: Migration {
    let name = "0101-streams-posted-link"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("ALTER TABLE streams ADD COLUMN posted_link TEXT").run()
    }
}
