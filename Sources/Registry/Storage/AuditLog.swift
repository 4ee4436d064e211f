import Foundation
import HubCore
import SQLKit

/// The audit trail: who changed what, from what to what, in which request. Written in the same
/// transaction as the change it describes.
enum AuditLog {
    struct Entry: Sendable {
        let actor: String
        let action: String
        let entity: String
        let entityID: String?
        let requestID: String?
    }

    /// Records `entry` with the fields that differ between `before` and `after` (all of them for a create
    /// or delete): `{"field":{"before":…,"after":…}}`.
    static func record(_ entry: Entry, before: [String: JSONText.Value]?, after: [String: JSONText.Value]?,
                       on db: any SQLDatabase, at now: Double = Timestamp.now()) async throws {
        try await db.raw("""
            INSERT INTO audit_log (actor, action, entity, entity_id, changes, request_id, at)
            VALUES (\(bind: entry.actor), \(bind: entry.action), \(bind: entry.entity), \(bind: entry.entityID),
                    \(bind: changes(before: before, after: after)), \(bind: entry.requestID), \(bind: now))
            """).run()
    }

    /// `{"field":{"before":…,"after":…}}` for the fields that differ.
    static func changes(before: [String: JSONText.Value]?, after: [String: JSONText.Value]?) -> String {
        let keys = Set((before ?? [:]).keys).union((after ?? [:]).keys).sorted()
        var changes: [(String, JSONText.Value)] = []
        for key in keys {
            let old = before?[key].map(JSONText.render) ?? "null"
            let new = after?[key].map(JSONText.render) ?? "null"
            guard old != new else { continue }
            changes.append((key, .raw(JSONText.object([("before", .raw(old)), ("after", .raw(new))]))))
        }
        return JSONText.object(changes)
    }

    struct Query: Sendable {
        var entity: String?
        var entityID: String?
        var actor: String?
        var since: Double?
        var until: Double?
        var page = 1
        var perPage = 50
    }

    static func list(_ query: Query, on db: any SQLDatabase) async throws -> (entries: [String], total: Int) {
        var conditions: [SQLQueryString] = []
        if let entity = query.entity { conditions.append("entity = \(bind: entity)") }
        if let id = query.entityID { conditions.append("entity_id = \(bind: id)") }
        if let actor = query.actor { conditions.append("actor = \(bind: actor)") }
        if let since = query.since { conditions.append("at >= \(bind: since)") }
        if let until = query.until { conditions.append("at <= \(bind: until)") }
        let whereClause: SQLQueryString = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let total = try await db.raw("SELECT COUNT(*) AS n FROM audit_log" + whereClause).first()?.decode(column: "n", as: Int.self) ?? 0
        let rows = try await db.raw("SELECT id, actor, action, entity, entity_id, changes, request_id, at FROM audit_log" + whereClause
            + " ORDER BY id DESC LIMIT \(bind: query.perPage) OFFSET \(bind: (query.page - 1) * query.perPage)").all()
        let entries = try rows.map { row in
            JSONText.object([
                ("id", .int(try row.decode(column: "id", as: Int.self))),
                ("actor", .string(try row.decode(column: "actor", as: String.self))),
                ("action", .string(try row.decode(column: "action", as: String.self))),
                ("entity", .string(try row.decode(column: "entity", as: String.self))),
                ("entity_id", try row.decode(column: "entity_id", as: String?.self).map(JSONText.Value.string) ?? .null),
                ("changes", .raw(try row.decode(column: "changes", as: String.self))),
                ("request_id", try row.decode(column: "request_id", as: String?.self).map(JSONText.Value.string) ?? .null),
                ("at", .string(Timestamp.iso8601(try row.decode(column: "at", as: Double.self)))),
            ])
        }
        return (entries, total)
    }
}

/// The bounded log of registry changes that `WS /api/v1/cable` replays to a client reconnecting with
/// `since=<event id>`. Ids come from the database, so they mean the same on every instance.
enum ChangeLog {
    /// How many changes are kept; a client further behind is told to refetch.
    static let retained = 10_000
    /// Most changes replayed on one reconnect.
    static let maxReplay = 1_000

    /// Appends a change and answers its event id.
    static func append(type: String, body: String, on db: any SQLDatabase, at now: Double) async throws -> Int64 {
        guard let row = try await db.raw("INSERT INTO registry_changes (type, body, at) VALUES (\(bind: type), \(bind: body), \(bind: now)) RETURNING id").first() else {
            throw HubError.internalError()
        }
        return try row.decode(column: "id", as: Int64.self)
    }

    /// The event payload for a change: `{"event_id":N,"stream":{…}}`.
    static func payload(id: Int64, body: String) -> String {
        "{\"event_id\":\(id),\"stream\":\(body)}"
    }

    enum Replay {
        case events([(id: Int64, type: String, payload: String)])
        case tooFarBehind
    }

    /// The changes after `since`, or `.tooFarBehind` when some of them are no longer kept or there are too many.
    static func since(_ since: Int64, on db: any SQLDatabase) async throws -> Replay {
        let bounds = try await db.raw("SELECT MIN(id) AS lo, MAX(id) AS hi FROM registry_changes").first()
        let lowest = try bounds?.decode(column: "lo", as: Int64?.self)
        let highest = try bounds?.decode(column: "hi", as: Int64?.self)
        guard let lowest, let highest else { return since == 0 ? .events([]) : .tooFarBehind }
        if since >= highest { return .events([]) }
        if since < lowest - 1 || highest - since > Int64(maxReplay) { return .tooFarBehind }
        let rows = try await db.raw("SELECT id, type, body FROM registry_changes WHERE id > \(bind: since) ORDER BY id LIMIT \(bind: maxReplay)").all()
        return .events(try rows.map { row in
            let id = try row.decode(column: "id", as: Int64.self)
            return (id, try row.decode(column: "type", as: String.self), payload(id: id, body: try row.decode(column: "body", as: String.self)))
        })
    }

    static func prune(on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM registry_changes WHERE id <= (SELECT MAX(id) FROM registry_changes) - \(bind: retained)").run()
    }
}
