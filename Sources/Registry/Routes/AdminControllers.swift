import Foundation
import HubCore
import HubStore
import Hummingbird
import SQLKit

/// Feature flags, read from the database (each read is one indexed lookup).
struct FeatureFlags: Sendable {
    let database: HubDatabase

    static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    func isEnabled(_ name: String) async throws -> Bool {
        try await database.sql.raw("SELECT enabled FROM feature_flags WHERE name = \(bind: name)").first()?.decode(column: "enabled", as: Bool.self) ?? false
    }

    func all() async throws -> [String] {
        try await database.sql.raw("SELECT name, enabled, description, updated_by, updated_at FROM feature_flags ORDER BY name").all().map(Self.json)
    }

    static func json(_ row: any SQLRow) throws -> String {
        JSONText.object([
            ("name", .string(try row.decode(column: "name", as: String.self))),
            ("enabled", .bool(try row.decode(column: "enabled", as: Bool.self))),
            ("description", .string(try row.decode(column: "description", as: String.self))),
            ("updated_by", try row.decode(column: "updated_by", as: String?.self).map(JSONText.Value.string) ?? .null),
            ("updated_at", try Timestamp.jsonValue(row.decode(column: "updated_at", as: Double?.self))),
        ])
    }

    struct Change: Decodable {
        let enabled: Bool
        let description: String?
    }

    func set(_ name: String, _ change: Change, writer: RegistryService.Writer) async throws -> String {
        guard Self.isValidName(name) else { throw HubError.validation("flag names are 1-64 lowercase letters, digits or '_'") }
        if let description = change.description, description.count > 500 { throw HubError.validation("description must be at most 500 characters") }
        let kind = database.kind
        return try await database.transaction { db in
            let before = try await db.raw("SELECT enabled FROM feature_flags WHERE name = \(bind: name)").first()?.decode(column: "enabled", as: Bool.self)
            let now = Timestamp.now()
            if before == nil {
                try await db.raw("INSERT INTO feature_flags (name, enabled, description, updated_by, updated_at) VALUES (\(bind: name), \(bind: change.enabled), \(bind: change.description ?? ""), \(bind: writer.principal.actor), \(bind: now))").run()
            } else if let description = change.description {
                try await db.raw("UPDATE feature_flags SET enabled = \(bind: change.enabled), description = \(bind: description), updated_by = \(bind: writer.principal.actor), updated_at = \(bind: now) WHERE name = \(bind: name)").run()
            } else {
                try await db.raw("UPDATE feature_flags SET enabled = \(bind: change.enabled), updated_by = \(bind: writer.principal.actor), updated_at = \(bind: now) WHERE name = \(bind: name)").run()
            }
            _ = kind
            try await AuditLog.record(.init(actor: writer.principal.actor, action: "update", entity: "feature_flag", entityID: name, requestID: writer.requestID),
                                      before: before.map { ["enabled": .bool($0)] }, after: ["enabled": .bool(change.enabled)], on: db, at: now)
            guard let row = try await db.raw("SELECT name, enabled, description, updated_by, updated_at FROM feature_flags WHERE name = \(bind: name)").first() else {
                throw HubError.internalError()
            }
            return try Self.json(row)
        }
    }
}

/// Feature flags, API keys, the audit log, and the small lookups StreamSource clients read.
struct AdminController {
    let service: RegistryService
    let access: Access
    let flags: FeatureFlags

    struct NewKey: Decodable {
        let name: String
        let role: String?
    }

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("feature_flags") { _, context in
            try context.require(.viewer)
            return jsonResponse("{\"feature_flags\":[" + (try await flags.all()).joined(separator: ",") + "]}")
        }
        group.put("feature_flags/:name") { request, context in
            let principal = try context.require(.admin)
            let name = context.parameters.get("name") ?? ""
            let change = try await request.decodeJSON(as: FeatureFlags.Change.self, limit: registryBodyLimit)
            return jsonResponse(try await flags.set(name, change, writer: .init(principal: principal, requestID: context.requestID)))
        }

        group.get("api_keys") { _, context in
            try context.require(.admin)
            let keys = try await AccountStore.apiKeys(on: service.database.sql)
            return jsonResponse("{\"api_keys\":[" + keys.map(\.json).joined(separator: ",") + "]}")
        }
        group.post("api_keys") { request, context in
            let principal = try context.require(.admin)
            let body = try await request.decodeJSON(as: NewKey.self, limit: registryBodyLimit)
            guard let role = Role(label: body.role ?? "viewer") else { throw HubError.validation("role must be \(Role.choices)") }
            let writer = RegistryService.Writer(principal: principal, requestID: context.requestID)
            let (record, key) = try await service.database.transaction { db in
                let created = try await AccountStore.createAPIKey(name: body.name, role: role, on: db)
                try await AuditLog.record(writer.entry("create", entity: "api_key", id: created.0.id), before: nil,
                                          after: ["name": .string(created.0.name), "role": .string(role.rawValue)], on: db)
                return created
            }
            // The key itself is shown this once and never again.
            return jsonResponse(JSONText.object([("key", .string(key)), ("api_key", .raw(record.json))]), status: .created)
        }
        group.delete("api_keys/:id") { _, context in
            let principal = try context.require(.admin)
            let id = try context.id(entity: "API key")
            let writer = RegistryService.Writer(principal: principal, requestID: context.requestID)
            try await service.database.transaction { db in
                guard !(try await AccountStore.revokeAPIKey(idOrName: String(id), on: db)).isEmpty else { throw HubError.notFound("no API key with id \(id)") }
                try await AuditLog.record(writer.entry("revoke", entity: "api_key", id: id), before: ["revoked": .bool(false)], after: ["revoked": .bool(true)], on: db)
            }
            access.forgetKeys()
            service.announceAccountChanged("api_key:\(id)")
            return Response(status: .noContent)
        }

        group.get("audit") { request, context in
            try context.require(.admin)
            let parameters = request.queryDictionary
            let paging = try Paging(parameters)
            var query = AuditLog.Query(page: paging.page, perPage: paging.perPage)
            func text(_ name: String) throws -> String? {
                guard let value = parameters[name], !value.isEmpty else { return nil }
                guard value.count <= 200 else { throw HubError.validation("\(name) must be at most 200 characters") }
                return value
            }
            func time(_ name: String) throws -> Double? {
                guard let value = parameters[name], !value.isEmpty else { return nil }
                guard let seconds = Timestamp.parse(value) else { throw HubError.validation("\(name) must be an ISO 8601 time or Unix seconds") }
                return seconds
            }
            query.entity = try text("entity")
            query.entityID = try text("entity_id")
            query.actor = try text("actor")
            query.since = try time("since")
            query.until = try time("until")
            let (entries, total) = try await AuditLog.list(query, on: service.database.sql)
            return jsonResponse("{\"entries\":[" + entries.joined(separator: ",") + "],\"meta\":" + paging.meta(total: total) + "}")
        }

        // Known cities come from the streams themselves (ignore lists are Discovery's).
        group.get("locations/known_cities") { _, context in
            try context.require(.viewer)
            let rows = try await service.database.sql.raw("""
                SELECT city, state FROM streams WHERE city IS NOT NULL GROUP BY city, state ORDER BY city, state LIMIT 5000
                """).all()
            let locations = try rows.map { row in
                JSONText.object([
                    ("city", .string(try row.decode(column: "city", as: String.self))),
                    ("state_province", try row.decode(column: "state", as: String?.self).map(JSONText.Value.string) ?? .null),
                ])
            }
            return jsonResponse("{\"locations\":[" + locations.joined(separator: ",") + "]}")
        }
    }
}
