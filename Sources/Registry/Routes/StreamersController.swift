import Foundation
import HubCore
import HubStore
import Hummingbird
import SQLKit

/// The people behind streams: `/api/v1/streamers`.
struct StreamersController {
    let service: RegistryService

    struct Account: Decodable, Sendable {
        let platform: String
        let handle: String
        let link: String?
    }

    struct Body: Decodable, Sendable {
        var name: Patch<String> = .absent
        var notes: Patch<String> = .absent
        var accounts: [Account]?

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for field in ["name", "notes"] {
                let key = AnyKey(field)
                guard container.contains(key) else { continue }
                let value: Patch<String> = try container.decodeNil(forKey: key) ? .clear : {
                    let text = try container.decode(String.self, forKey: key).trimmingCharacters(in: .whitespacesAndNewlines)
                    return text.isEmpty ? .clear : .set(text)
                }()
                if field == "name" { name = value } else { notes = value }
            }
            if container.contains(AnyKey("accounts")), !(try container.decodeNil(forKey: AnyKey("accounts"))) {
                accounts = try container.decode([Account].self, forKey: AnyKey("accounts"))
            }
        }

        func validate(creating: Bool) throws {
            switch name {
            case .absent where creating, .clear: throw HubError.validation("name is required (1-200 characters)")
            case .set(let text) where text.count > 200: throw HubError.validation("name must be at most 200 characters")
            default: break
            }
            if case .set(let text) = notes, text.count > StreamLimits.notes { throw HubError.validation("notes must be at most \(StreamLimits.notes) characters") }
            guard (accounts?.count ?? 0) <= 50 else { throw HubError.validation("at most 50 accounts") }
            for account in accounts ?? [] {
                guard Platform(rawValue: account.platform.lowercased()) != nil else { throw HubError.validation("accounts[].platform must be \(Platform.choices)") }
                guard (1...200).contains(account.handle.trimmingCharacters(in: .whitespaces).count) else { throw HubError.validation("accounts[].handle must be 1-200 characters") }
                if let link = account.link, !link.isEmpty {
                    do { _ = try StreamLink(link) } catch { throw HubError.validation("accounts[].link: \(error.description)") }
                }
            }
        }
    }

    struct Merge: Decodable {
        let fromID: Int64
        enum CodingKeys: String, CodingKey { case fromID = "from_id" }
    }

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("streamers") { request, context in
            try context.require(.viewer)
            let parameters = request.queryDictionary
            let paging = try Paging(parameters)
            var condition: SQLQueryString = ""
            if let q = parameters["q"], !q.isEmpty {
                guard q.count <= 200 else { throw HubError.validation("q must be at most 200 characters") }
                condition = " WHERE lower(name) LIKE \(bind: "%" + StreamStore.escapeLike(q.lowercased()) + "%") ESCAPE '\\'"
            }
            let db = service.database.sql
            let total = try await db.raw("SELECT COUNT(*) AS n FROM streamers" + condition).first()?.decode(column: "n", as: Int.self) ?? 0
            let rows = try await db.raw("SELECT id FROM streamers" + condition + " ORDER BY name, id LIMIT \(bind: paging.perPage) OFFSET \(bind: paging.offset)").all()
            var items: [String] = []
            for row in rows {
                if let json = try await Self.json(try row.decode(column: "id", as: Int64.self), on: db, withStreams: false) { items.append(json) }
            }
            return jsonResponse("{\"streamers\":[" + items.joined(separator: ",") + "],\"meta\":" + paging.meta(total: total) + "}")
        }
        group.get("streamers/:id") { _, context in
            try context.require(.viewer)
            let id = try context.id(entity: "streamer")
            guard let json = try await Self.json(id, on: service.database.sql, withStreams: true) else { throw Self.notFound(id) }
            return jsonResponse(json)
        }
        group.post("streamers") { request, context in
            let principal = try context.require(.editor)
            let body = try await request.decodeJSON(as: Body.self, limit: registryBodyLimit)
            try body.validate(creating: true)
            let writer = RegistryService.Writer(principal: principal, requestID: context.requestID)
            let json = try await service.database.transaction { db -> String in
                let now = Timestamp.now()
                guard let row = try await db.raw("INSERT INTO streamers (name, notes, created_at, updated_at) VALUES (\(bind: body.name.apply(to: nil)), \(bind: body.notes.apply(to: nil)), \(bind: now), \(bind: now)) RETURNING id").first() else {
                    throw HubError.internalError()
                }
                let id = try row.decode(column: "id", as: Int64.self)
                try await Self.replaceAccounts(of: id, with: body.accounts ?? [], on: db)
                try await AuditLog.record(writer.entry("create", entity: "streamer", id: id), before: nil, after: ["name": .string(body.name.apply(to: nil) ?? "")], on: db)
                guard let json = try await Self.json(id, on: db, withStreams: true) else { throw HubError.internalError() }
                return json
            }
            return jsonResponse(json, status: .created)
        }
        group.patch("streamers/:id") { request, context in
            let principal = try context.require(.editor)
            let id = try context.id(entity: "streamer")
            let body = try await request.decodeJSON(as: Body.self, limit: registryBodyLimit)
            try body.validate(creating: false)
            let writer = RegistryService.Writer(principal: principal, requestID: context.requestID)
            let json = try await service.database.transaction { db -> String in
                guard let row = try await db.raw("SELECT name, notes FROM streamers WHERE id = \(bind: id)").first() else { throw Self.notFound(id) }
                let oldName = try row.decode(column: "name", as: String.self)
                let oldNotes = try row.decode(column: "notes", as: String?.self)
                let name = body.name.apply(to: oldName) ?? oldName
                let notes = body.notes.apply(to: oldNotes)
                try await db.raw("UPDATE streamers SET name = \(bind: name), notes = \(bind: notes), updated_at = \(bind: Timestamp.now()) WHERE id = \(bind: id)").run()
                if let accounts = body.accounts { try await Self.replaceAccounts(of: id, with: accounts, on: db) }
                func text(_ value: String?) -> JSONText.Value { value.map(JSONText.Value.string) ?? .null }
                try await AuditLog.record(writer.entry("update", entity: "streamer", id: id), before: ["name": .string(oldName), "notes": text(oldNotes)],
                                          after: ["name": .string(name), "notes": text(notes)], on: db)
                guard let json = try await Self.json(id, on: db, withStreams: true) else { throw HubError.internalError() }
                return json
            }
            return jsonResponse(json)
        }
        group.delete("streamers/:id") { _, context in
            let principal = try context.require(.admin)
            let id = try context.id(entity: "streamer")
            let writer = RegistryService.Writer(principal: principal, requestID: context.requestID)
            try await service.database.transaction { db in
                guard try await db.raw("SELECT id FROM streamers WHERE id = \(bind: id)").first() != nil else { throw Self.notFound(id) }
                try await db.raw("UPDATE streams SET streamer_id = NULL WHERE streamer_id = \(bind: id)").run()
                try await db.raw("DELETE FROM streamer_accounts WHERE streamer_id = \(bind: id)").run()
                try await db.raw("DELETE FROM streamers WHERE id = \(bind: id)").run()
                try await AuditLog.record(writer.entry("delete", entity: "streamer", id: id), before: ["id": .int(Int(id))], after: nil, on: db)
            }
            service.changed()
            return Response(status: .noContent)
        }
        group.post("streamers/:id/merge") { request, context in
            let principal = try context.require(.admin)
            let id = try context.id(entity: "streamer")
            let body = try await request.decodeJSON(as: Merge.self, limit: registryBodyLimit)
            guard body.fromID != id else { throw HubError.validation("from_id must name another streamer") }
            let writer = RegistryService.Writer(principal: principal, requestID: context.requestID)
            let json = try await service.database.transaction { db -> String in
                for streamer in [id, body.fromID] {
                    guard try await db.raw("SELECT id FROM streamers WHERE id = \(bind: streamer)").first() != nil else { throw Self.notFound(streamer) }
                }
                try await db.raw("UPDATE streams SET streamer_id = \(bind: id) WHERE streamer_id = \(bind: body.fromID)").run()
                // Accounts the target already has (same platform and handle) are dropped, the rest move.
                try await db.raw("""
                    DELETE FROM streamer_accounts WHERE streamer_id = \(bind: body.fromID) AND EXISTS (
                        SELECT 1 FROM streamer_accounts t WHERE t.streamer_id = \(bind: id)
                        AND t.platform = streamer_accounts.platform AND t.handle = streamer_accounts.handle)
                    """).run()
                try await db.raw("UPDATE streamer_accounts SET streamer_id = \(bind: id) WHERE streamer_id = \(bind: body.fromID)").run()
                try await db.raw("DELETE FROM streamers WHERE id = \(bind: body.fromID)").run()
                try await AuditLog.record(writer.entry("merge", entity: "streamer", id: id), before: ["merged_from": .null], after: ["merged_from": .int(Int(body.fromID))], on: db)
                guard let json = try await Self.json(id, on: db, withStreams: true) else { throw HubError.internalError() }
                return json
            }
            service.changed()
            return jsonResponse(json)
        }
    }

    static func notFound(_ id: Int64) -> HubError { HubError.notFound("no streamer with id \(id)") }

    static func replaceAccounts(of id: Int64, with accounts: [Account], on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM streamer_accounts WHERE streamer_id = \(bind: id)").run()
        var seen = Set<String>()
        for account in accounts {
            let platform = account.platform.lowercased()
            let handle = account.handle.trimmingCharacters(in: .whitespaces)
            guard seen.insert(platform + "\u{0}" + handle.lowercased()).inserted else { continue }
            if let owner = try await db.raw("SELECT streamer_id FROM streamer_accounts WHERE platform = \(bind: platform) AND handle = \(bind: handle)").first() {
                let other = try owner.decode(column: "streamer_id", as: Int64.self)
                throw HubError.conflict("the \(platform) account \(handle) already belongs to streamer \(other)", code: "account_taken")
            }
            let link = try account.link.flatMap { $0.isEmpty ? nil : try StreamLink($0).url }
            try await db.raw("INSERT INTO streamer_accounts (streamer_id, platform, handle, link) VALUES (\(bind: id), \(bind: platform), \(bind: handle), \(bind: link))").run()
        }
    }

    static func json(_ id: Int64, on db: any SQLDatabase, withStreams: Bool) async throws -> String? {
        guard let row = try await db.raw("SELECT id, name, notes, created_at, updated_at FROM streamers WHERE id = \(bind: id)").first() else { return nil }
        let accounts = try await db.raw("SELECT platform, handle, link FROM streamer_accounts WHERE streamer_id = \(bind: id) ORDER BY platform, handle").all().map { account in
            JSONText.object([
                ("platform", .string(try account.decode(column: "platform", as: String.self))),
                ("handle", .string(try account.decode(column: "handle", as: String.self))),
                ("link", try account.decode(column: "link", as: String?.self).map(JSONText.Value.string) ?? .null),
            ])
        }
        var fields: [(String, JSONText.Value)] = [
            ("id", .int(Int(id))), ("name", .string(try row.decode(column: "name", as: String.self))),
            ("notes", try row.decode(column: "notes", as: String?.self).map(JSONText.Value.string) ?? .null),
            ("accounts", .raw("[" + accounts.joined(separator: ",") + "]")),
            ("created_at", .string(Timestamp.iso8601(try row.decode(column: "created_at", as: Double.self)))),
            ("updated_at", .string(Timestamp.iso8601(try row.decode(column: "updated_at", as: Double.self)))),
        ]
        if withStreams {
            var query = StreamQuery()
            query.archived = .any
            query.streamerID = id
            query.perPage = 1000
            let (streams, _) = try await StreamStore.list(query, on: db)
            fields.append(("streams", .raw("[" + streams.map(\.json).joined(separator: ",") + "]")))
        }
        return JSONText.object(fields)
    }
}
