import Foundation
import HubCore
import HubStore
import Hummingbird
import NIOCore
import Registry
import SQLKit

/// Communities, their overlay keys and their browser sources, for editors and admins.
struct CommunitiesController {
    let database: HubDatabase
    let keys: OverlayKeys
    let pages: PageCache
    let communities: CommunityDirectory
    let bus: EventBus

    static let sourcesChanged = "internal.overlay_sources_changed"

    struct NewCommunity: Decodable { let name: String }
    struct Schedule: Decodable {
        let everySeconds: Double?
        enum CodingKeys: String, CodingKey { case everySeconds = "every_seconds" }
    }

    struct SourceBody: Decodable {
        var name: String?
        var kind: String?
        var url: String?
        var streamID: Int64?
        var recordingID: String?
        var x: Int?, y: Int?, width: Int?, height: Int?, z: Int?
        var visible: Bool?
        var style: BrowserSource.Style?

        enum CodingKeys: String, CodingKey {
            case name, kind, url, streamID = "stream_id", recordingID = "recording_id", x, y, width, height, z, visible, style
        }

        func validate(creating: Bool) throws {
            if creating { guard name != nil, kind != nil else { throw HubError.validation("name and kind are required") } }
            if let name, !(1...100).contains(name.count) { throw HubError.validation("name must be 1-100 characters") }
            if let kind, BrowserSource.Kind(rawValue: kind) == nil {
                throw HubError.validation("kind must be captions, web, stream or recording")
            }
            if let url {
                guard url.count <= 2048, OverlayPage.origin(of: url) != nil else { throw HubError.validation("url must be an http(s) URL (at most 2048 characters)") }
            }
            if let recordingID, !(1...64).contains(recordingID.count) || !recordingID.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) {
                throw HubError.validation("recording_id must be 1-64 letters, digits or '-'")
            }
            for (name, value, range) in [("x", x, -10_000...10_000), ("y", y, -10_000...10_000), ("width", width, 1...10_000), ("height", height, 1...10_000), ("z", z, -1000...1000)] {
                if let value, !range.contains(value) { throw HubError.validation("\(name) must be from \(range.lowerBound) to \(range.upperBound)") }
            }
            try style?.validate()
        }
    }

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("communities") { _, context in
            try context.require(.editor)
            let rows = try await database.sql.raw("SELECT id, name, created_at FROM communities ORDER BY id").all()
            let items = try rows.map(Self.communityJSON)
            return jsonResponse("{\"communities\":[" + items.joined(separator: ",") + "]}")
        }
        group.post("communities") { request, context in
            try context.require(.editor)
            let body = try await request.decodeJSON(as: NewCommunity.self, limit: 16 * 1024)
            let (id, key) = try await create(name: body.name)
            return jsonResponse(JSONText.object([
                ("community", .raw(JSONText.object([("id", .int(Int(id))), ("name", .string(body.name.trimmingCharacters(in: .whitespaces)))]))),
                ("overlay_key", .string(key)), ("overlay_url", .string("/overlay/\(key)")),
            ]), status: .created)
        }
        group.get("communities/:id") { _, context in
            try context.require(.editor)
            let id = try await community(context)
            let status = try await keys.status(id)
            guard let row = try await database.sql.raw("SELECT id, name, created_at FROM communities WHERE id = \(bind: id)").first() else { throw notFound(id) }
            return jsonResponse(JSONText.object([("community", .raw(try Self.communityJSON(row))), ("overlay_key", status.map { .raw($0.json) } ?? .null)]))
        }
        group.post("communities/:id/overlay_key/rotate") { _, context in
            try context.require(.editor)
            let id = try await community(context)
            let rotation = try await keys.rotation(id)
            OverlayKeyRotation.announce(rotation, on: bus)
            let key = rotation.key
            return jsonResponse(JSONText.object([("overlay_key", .string(key)), ("overlay_url", .string("/overlay/\(key)")),
                                                 ("previous_valid_for_seconds", .int(Int(keys.gracePeriod)))]))
        }
        group.put("communities/:id/overlay_key/schedule") { request, context in
            try context.require(.editor)
            let id = try await community(context)
            let body = try await request.decodeJSON(as: Schedule.self, limit: 4096)
            if let every = body.everySeconds, !(60...(365 * 86_400)).contains(every) {
                throw HubError.validation("every_seconds must be from 60 to 31536000, or null to stop")
            }
            try await keys.schedule(id, every: body.everySeconds)
            return jsonResponse(try await keys.status(id)?.json ?? "{}")
        }
        group.get("communities/:id/sources") { _, context in
            try context.require(.editor)
            let id = try await community(context)
            let rows = try await database.sql.raw("SELECT \(unsafeRaw: BrowserSource.columns) FROM browser_sources WHERE community_id = \(bind: id) ORDER BY z, id").all()
            return jsonResponse("{\"sources\":[" + (try rows.map { try BrowserSource(row: $0).json }).joined(separator: ",") + "]}")
        }
        group.post("communities/:id/sources") { request, context in
            try context.require(.editor)
            let id = try await community(context)
            let body = try await request.decodeJSON(as: SourceBody.self, limit: 16 * 1024)
            try body.validate(creating: true)
            let now = Date().timeIntervalSince1970
            guard let row = try await database.sql.raw("""
                INSERT INTO browser_sources (community_id, name, kind, url, stream_id, recording_id, x, y, width, height, z, visible, style, created_at, updated_at)
                VALUES (\(bind: id), \(bind: body.name ?? ""), \(bind: body.kind ?? "web"), \(bind: body.url), \(bind: body.streamID), \(bind: body.recordingID),
                        \(bind: body.x ?? 0), \(bind: body.y ?? 0), \(bind: body.width ?? 1920), \(bind: body.height ?? 1080), \(bind: body.z ?? 0),
                        \(bind: body.visible ?? true), \(bind: (body.style ?? .init()).json), \(bind: now), \(bind: now))
                RETURNING \(unsafeRaw: BrowserSource.columns)
                """).first() else { throw HubError.internalError() }
            sourcesChanged(id)
            return jsonResponse(try BrowserSource(row: row).json, status: .created)
        }
        group.patch("communities/:id/sources/:source") { request, context in
            try context.require(.editor)
            let id = try await community(context)
            let sourceID = try context.id("source", entity: "source")
            let body = try await request.decodeJSON(as: SourceBody.self, limit: 16 * 1024)
            try body.validate(creating: false)
            guard let row = try await database.sql.raw("SELECT \(unsafeRaw: BrowserSource.columns) FROM browser_sources WHERE id = \(bind: sourceID) AND community_id = \(bind: id)").first() else {
                throw HubError.notFound("no source \(sourceID) in community \(id)")
            }
            var source = try BrowserSource(row: row)
            if let name = body.name { source.name = name }
            if let kind = body.kind.flatMap(BrowserSource.Kind.init(rawValue:)) { source.kind = kind }
            if let url = body.url { source.url = url }
            if let stream = body.streamID { source.streamID = stream }
            if let recording = body.recordingID { source.recordingID = recording }
            source.x = body.x ?? source.x; source.y = body.y ?? source.y; source.width = body.width ?? source.width
            source.height = body.height ?? source.height; source.z = body.z ?? source.z; source.visible = body.visible ?? source.visible
            if let style = body.style { source.style = style }
            try await database.sql.raw("""
                UPDATE browser_sources SET name = \(bind: source.name), kind = \(bind: source.kind.rawValue), url = \(bind: source.url),
                    stream_id = \(bind: source.streamID), recording_id = \(bind: source.recordingID), x = \(bind: source.x), y = \(bind: source.y),
                    width = \(bind: source.width), height = \(bind: source.height), z = \(bind: source.z), visible = \(bind: source.visible),
                    style = \(bind: source.style.json), updated_at = \(bind: Date().timeIntervalSince1970)
                WHERE id = \(bind: sourceID)
                """).run()
            sourcesChanged(id)
            return jsonResponse(source.json)
        }
        group.delete("communities/:id/sources/:source") { _, context in
            try context.require(.editor)
            let id = try await community(context)
            let sourceID = try context.id("source", entity: "source")
            let rows = try await database.sql.raw("DELETE FROM browser_sources WHERE id = \(bind: sourceID) AND community_id = \(bind: id) RETURNING id").all()
            guard !rows.isEmpty else { throw HubError.notFound("no source \(sourceID) in community \(id)") }
            sourcesChanged(id)
            return Response(status: .noContent)
        }
        group.get("communities/:id/access-log") { request, context in
            try context.require(.editor)
            let id = try await community(context)
            let paging = try Paging(request.queryDictionary)
            let total = try await database.sql.raw("SELECT COUNT(*) AS n FROM overlay_access_log WHERE community_id = \(bind: id)").first()?
                .decode(column: "n", as: Int.self) ?? 0
            let rows = try await database.sql.raw("""
                SELECT id, key_prefix, ip, user_agent, path, sources_served, result, at FROM overlay_access_log WHERE community_id = \(bind: id)
                ORDER BY id DESC LIMIT \(bind: paging.perPage) OFFSET \(bind: paging.offset)
                """).all()
            let entries = try rows.map { row in
                JSONText.object([
                    ("id", .int(try row.decode(column: "id", as: Int.self))), ("key_prefix", .string(try row.decode(column: "key_prefix", as: String.self))),
                    ("ip", try row.decode(column: "ip", as: String?.self).map(JSONText.Value.string) ?? .null),
                    ("user_agent", try row.decode(column: "user_agent", as: String?.self).map(JSONText.Value.string) ?? .null),
                    ("path", .string(try row.decode(column: "path", as: String.self))),
                    ("sources_served", .int(try row.decode(column: "sources_served", as: Int.self))),
                    ("result", .string(try row.decode(column: "result", as: String.self))),
                    ("at", .string(Timestamp.iso8601(try row.decode(column: "at", as: Double.self)))),
                ])
            }
            return jsonResponse("{\"entries\":[" + entries.joined(separator: ",") + "],\"meta\":" + paging.meta(total: total) + "}")
        }
    }

    static func communityJSON(_ row: any SQLRow) throws -> String {
        JSONText.object([
            ("id", .int(try row.decode(column: "id", as: Int.self))), ("name", .string(try row.decode(column: "name", as: String.self))),
            ("created_at", .string(Timestamp.iso8601(try row.decode(column: "created_at", as: Double.self)))),
        ])
    }

    func notFound(_ id: Int64) -> HubError { HubError.notFound("no community with id \(id)") }

    func community(_ context: HubRequestContext) async throws -> Int64 {
        let id = try context.id(entity: "community")
        guard try await communities.exists(id) else { throw notFound(id) }
        return id
    }

    func sourcesChanged(_ id: Int64) {
        pages.invalidate(id)
        bus.publish(type: Self.sourcesChanged, payload: ByteBuffer(string: JSONText.object([("community_id", .int(Int(id)))])), visibility: .nobody)
    }

    /// Creates a community with its first overlay key; answers both (the key is shown this once).
    func create(name raw: String) async throws -> (Int64, String) {
        try await OverlayAdmin.create(name: raw, database: database, keys: keys, communities: communities)
    }
}

/// What `streamhub overlay create|rotate|show` and the REST API share.
public enum OverlayAdmin {
    static func validName(_ raw: String) throws -> String {
        let name = raw.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(name.count), !name.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw HubError.validation("name must be 1-100 characters")
        }
        return name
    }

    static func create(name raw: String, database: HubDatabase, keys: OverlayKeys, communities: CommunityDirectory?) async throws -> (Int64, String) {
        let name = try validName(raw)
        let (id, key) = try await database.transaction { db -> (Int64, String) in
            if let existing = try await db.raw("SELECT id FROM communities WHERE name = \(bind: name)").first() {
                throw HubError.conflict("community '\(name)' already exists (id \(try existing.decode(column: "id", as: Int.self)))", code: "community_exists")
            }
            guard let row = try await db.raw("INSERT INTO communities (name, created_at) VALUES (\(bind: name), \(bind: Date().timeIntervalSince1970)) RETURNING id").first() else {
                throw HubError.internalError()
            }
            let id = try row.decode(column: "id", as: Int64.self)
            return (id, try await keys.create(for: id, on: db))
        }
        communities?.add(id)
        return (id, key)
    }

    /// The community named (or numbered) `reference`.
    public static func find(_ reference: String, database: HubDatabase) async throws -> Int64? {
        if let id = Int64(reference), try await database.sql.raw("SELECT id FROM communities WHERE id = \(bind: id)").first() != nil { return id }
        return try await database.sql.raw("SELECT id FROM communities WHERE name = \(bind: reference)").first()?.decode(column: "id", as: Int64.self)
    }

    /// `streamhub overlay create NAME`: the community and its first key (or a new key for an existing
    /// community without one).
    public static func createCLI(_ name: String, database: HubDatabase, gracePeriod: Double) async throws -> String {
        let keys = OverlayKeys(database: database, gracePeriod: gracePeriod)
        if let id = try await find(name, database: database) {
            let key = try await keys.create(for: id)
            return "community \(id) '\(name)': overlay key \(key)\noverlay URL path: /overlay/\(key)"
        }
        let (id, key) = try await create(name: name, database: database, keys: keys, communities: nil)
        return "created community \(id) '\(name)': overlay key \(key)\noverlay URL path: /overlay/\(key)"
    }

    public static func rotateCLI(_ reference: String, database: HubDatabase, gracePeriod: Double) async throws -> String {
        guard let id = try await find(reference, database: database) else { throw HubError.notFound("no community '\(reference)'") }
        let key = try await OverlayKeys(database: database, gracePeriod: gracePeriod).rotate(id)
        return "community \(id): new overlay key \(key)\noverlay URL path: /overlay/\(key)\nthe previous key stays valid for \(Int(gracePeriod)) s"
    }

    public static func showCLI(_ reference: String, database: HubDatabase, gracePeriod: Double) async throws -> String {
        guard let id = try await find(reference, database: database) else { throw HubError.notFound("no community '\(reference)'") }
        guard let status = try await OverlayKeys(database: database, gracePeriod: gracePeriod).status(id) else {
            return "community \(id) has no overlay key; create one with `streamhub overlay create \(reference)`"
        }
        var lines = ["community \(id)", "current key: \(status.currentPrefix)… (created \(Timestamp.iso8601(status.createdAt)))"]
        if let rotated = status.rotatedAt { lines.append("rotated at: \(Timestamp.iso8601(rotated))") }
        if let previous = status.previousPrefix, let until = status.previousValidUntil {
            lines.append("previous key: \(previous)… valid until \(Timestamp.iso8601(until))")
        }
        if let every = status.rotateEvery { lines.append("rotates every \(Int(every)) s; next at \(status.nextRotationAt.map(Timestamp.iso8601) ?? "?")") }
        lines.append("(keys are shown in full only when created or rotated)")
        return lines.joined(separator: "\n")
    }
}
