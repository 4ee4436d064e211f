import SQLKit

/// The migrations HubStore itself owns; domain modules bring their own.
public enum CoreMigrations {
    public static let all: [any Migration] = [CreateEventPayloads(), CreateLeases(), CreateInstances(), CreateEventLog()]
}

/// Event payloads too large for a PostgreSQL NOTIFY travel through this table (see `PostgresBackplane`).
struct CreateEventPayloads: Migration {
    let name = "0001-core-event-payloads"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        switch kind {
        case .postgres:
            try await database.raw("""
                CREATE TABLE hub_event_payloads (
                    id BIGSERIAL PRIMARY KEY,
                    body TEXT NOT NULL,
                    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """).run()
        case .sqlite:
            try await database.raw("""
                CREATE TABLE hub_event_payloads (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    body TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL DEFAULT 0
                )
                """).run()
        }
        try await database.raw("CREATE INDEX hub_event_payloads_created_at ON hub_event_payloads (created_at)").run()
    }
}

/// Named leases: which instance runs what must run on one instance at a time (see `Leases`).
struct CreateLeases: Migration {
    let name = "0002-core-leases"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("""
            CREATE TABLE hub_leases (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                acquired_at DOUBLE PRECISION NOT NULL,
                until DOUBLE PRECISION NOT NULL
            )
            """).run()
    }
}

/// Where each instance answers (see `InstanceDirectory`).
struct CreateInstances: Migration {
    let name = "0003-core-instances"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        try await database.raw("""
            CREATE TABLE hub_instances (
                id TEXT PRIMARY KEY,
                address TEXT,
                seen_at DOUBLE PRECISION NOT NULL
            )
            """).run()
    }
}

/// The backplane's bounded event log: every event sent between instances, for a listener that reconnects
/// to replay what it missed (see `PostgresBackplane`). PostgreSQL only; SQLite has one instance.
struct CreateEventLog: Migration {
    let name = "0004-core-event-log"

    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws {
        guard kind == .postgres else { return }
        try await database.raw("""
            CREATE TABLE hub_event_log (
                id BIGSERIAL PRIMARY KEY,
                body TEXT NOT NULL,
                logged_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """).run()
        try await database.raw("CREATE INDEX hub_event_log_logged_at ON hub_event_log (logged_at)").run()
    }
}
