import Foundation
import HubCore
import Hummingbird
import NIOCore
import Recorder
import Registry

/// `/api/v1/walls`: walls, their cells and their audio. Reading needs a signed-in viewer; changing needs an
/// editor. Every change is a `wall_changed` event.
struct WallsController {
    let store: WallStore
    let links: WallLinks
    let registry: RegistryService
    let recorder: RecorderModule
    let bus: EventBus

    static let bodyLimit = 16 * 1024
    /// `wall_presence`: who has a wall's pages open (each page says so every 10 s; gone after `ttl`).
    static let presenceEvent = "wall_presence"

    struct NewWall: Decodable {
        let name: String
        let title: String?
        let columns: Int?
        let rows: Int?
    }

    struct WallChange: Decodable {
        let title: String??
        let columns: Int?
        let rows: Int?

        enum CodingKeys: String, CodingKey { case title, columns, rows }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            // `"title": null` clears the title; a missing key leaves it.
            title = container.contains(.title) ? .some(try container.decodeIfPresent(String.self, forKey: .title)) : .none
            columns = try container.decodeIfPresent(Int.self, forKey: .columns)
            rows = try container.decodeIfPresent(Int.self, forKey: .rows)
        }
    }

    struct CellBody: Decodable {
        let streamID: Int64?
        let recordingID: String?
        let url: String?
        let fallbackStreamID: Int64?
        let rewindSeconds: Int?
        let blurred: Bool?
        let rotation: Int?

        enum CodingKeys: String, CodingKey {
            case streamID = "stream_id", recordingID = "recording_id", url
            case fallbackStreamID = "fallback_stream_id", rewindSeconds = "rewind_seconds", blurred, rotation
        }
    }

    struct AudioBody: Decodable {
        let cell: Int?
        let volume: Double?
    }

    struct InviteBody: Decodable {
        let role: String
        let expiresIn: Int?
        let maxUses: Int?
        let label: String?
        enum CodingKeys: String, CodingKey { case role, expiresIn = "expires_in", maxUses = "max_uses", label }
    }

    struct DisplayBody: Decodable {
        let label: String?
    }

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("walls") { _, context in
            try context.require(.viewer)
            let walls = try await store.list()
            return jsonResponse("{\"walls\":[" + walls.map(\.json).joined(separator: ",") + "]}")
        }
        group.post("walls") { request, context in
            let principal = try context.require(.editor)
            let body = try await request.decodeJSON(as: NewWall.self, limit: Self.bodyLimit)
            guard Wall.isValidName(body.name) else {
                throw HubError.validation("name must be 1-40 lowercase letters, digits or '-' (it is the wall's address: /wall/<name>)")
            }
            let (columns, rows) = try Self.grid(columns: body.columns ?? 3, rows: body.rows ?? 3)
            let wall = try await store.create(name: body.name, title: try Self.title(body.title), columns: columns, rows: rows, by: principal.actor)
            return jsonResponse(wall.json, status: .created, headers: [.location: "/api/v1/walls/\(wall.name)"])
        }
        group.get("walls/:name") { _, context in
            let name = try Self.name(context)
            try Self.requireRead(context, wall: name)
            return jsonResponse(try await store.get(name).json)
        }
        group.patch("walls/:name") { request, context in
            let principal = try context.require(.editor)
            let name = try Self.name(context)
            let body = try await request.decodeJSON(as: WallChange.self, limit: Self.bodyLimit)
            // Only what was sent is checked and applied; the rest is read inside the wall's transaction.
            _ = try Self.grid(columns: body.columns ?? 1, rows: body.rows ?? 1)
            let title: String?? = try body.title.map { try Self.title($0) }
            return jsonResponse(try await store.update(name, title: title, columns: body.columns, rows: body.rows, by: principal.actor).json)
        }
        group.delete("walls/:name") { _, context in
            let principal = try context.require(.editor)
            try await store.delete(try Self.name(context), by: principal.actor)
            return Response(status: .noContent)
        }
        group.put("walls/:name/cells/:cell") { request, context in
            let name = try Self.name(context)
            let principal = try Self.requireOperate(context, wall: name)
            let number = try Self.cellNumber(context)
            let body = try await request.decodeJSON(as: CellBody.self, limit: Self.bodyLimit)
            let cell = try await validate(body, number: number)
            return jsonResponse(try await store.setCell(name, number, to: cell, by: principal.actor).json)
        }
        group.delete("walls/:name/cells/:cell") { _, context in
            let name = try Self.name(context)
            let principal = try Self.requireOperate(context, wall: name)
            return jsonResponse(try await store.clearCell(name, try Self.cellNumber(context), by: principal.actor).json)
        }
        // What the wall shows, for whoever may read the wall (its displays too): the streams (and fallbacks)
        // and recordings in its cells, as the API shows them.
        group.get("walls/:name/sources") { _, context in
            let name = try Self.name(context)
            try Self.requireRead(context, wall: name)
            let wall = try await store.get(name)
            let streams = try await registry.streams(ids: wall.streamIDs.sorted())
            // The recordings the cells show, and the running recordings of the cells' streams (a tile can rewind those).
            let recordings = try await recorder.recordingsJSON(ids: wall.recordingIDs.sorted())
                + recorder.runningRecordingsJSON(streamIDs: wall.streamIDs.sorted())
            return jsonResponse("{\"streams\":[" + streams.map(\.json).joined(separator: ",") + "],\"recordings\":["
                + recordings.joined(separator: ",") + "]}")
        }
        // Presence: a page open on the wall says so every 10 s (`state: "here"`) and on leaving (`"gone"`);
        // every control page shows who is there. Nothing is stored: an entry lapses after `ttl` seconds.
        group.post("walls/:name/presence") { request, context in
            let name = try Self.name(context)
            let principal = try Self.requireRead(context, wall: name)
            let (session, page, state) = try await request.decodeJSON(as: PresenceReport.self, limit: 1024).validated(pages: ["control", "display"])
            _ = try await store.get(name)
            let who = principal.scope.map { scope in "\(scope.access) link" + (principal.name.isEmpty ? "" : " (\(principal.id))") } ?? principal.name
            bus.publish(type: Self.presenceEvent, payload: ByteBuffer(string: JSONText.object([
                ("wall", .string(name)), ("session", .string(session)), ("page", .string(page)), ("state", .string(state)),
                ("name", .string(who)), ("role", .string(principal.scope?.access ?? principal.role)), ("ttl", .int(PresenceReport.ttl)),
            ])), visibility: EventVisibility.viewers.adding(wall: name))
            return Response(status: .accepted)
        }
        group.put("walls/:name/audio") { request, context in
            let name = try Self.name(context)
            let principal = try Self.requireOperate(context, wall: name)
            let body = try await request.decodeJSON(as: AudioBody.self, limit: Self.bodyLimit)
            if let volume = body.volume, !(volume.isFinite && (0...1).contains(volume)) { throw HubError.validation("volume must be from 0 to 1") }
            return jsonResponse(try await store.setAudio(name, cell: body.cell, volume: body.volume, by: principal.actor).json)
        }
    }

    /// Invites and display links (editor): create (the token is shown once), list, revoke. Revoking closes
    /// the link's open sockets on every instance.
    func addLinkRoutes(to group: RouterGroup<HubRequestContext>) {
        group.post("walls/:name/invites") { request, context in
            let principal = try context.require(.editor)
            let name = try Self.name(context)
            _ = try await store.get(name)
            let body = try await request.decodeJSON(as: InviteBody.self, limit: Self.bodyLimit)
            guard let access = WallLinks.Access(rawValue: body.role.lowercased()), access != .display else {
                throw HubError.validation("role must be operator or viewer")
            }
            let expiresIn = body.expiresIn ?? 86_400
            guard (60...(30 * 86_400)).contains(expiresIn) else { throw HubError.validation("expires_in must be from 60 to 2592000 seconds (30 days)") }
            if let uses = body.maxUses, !(1...10_000).contains(uses) { throw HubError.validation("max_uses must be from 1 to 10000") }
            let (link, token) = try await links.create(wall: name, kind: .invite, access: access, label: try Self.title(body.label),
                                                       expiresAt: Timestamp.now() + Double(expiresIn), maxUses: body.maxUses, by: principal.actor)
            return jsonResponse(link.json(token: token), status: .created)
        }
        group.post("walls/:name/displays") { request, context in
            let principal = try context.require(.editor)
            let name = try Self.name(context)
            _ = try await store.get(name)
            let buffer = try await request.collectBody(limit: Self.bodyLimit)
            let body = buffer.readableBytes == 0 ? DisplayBody(label: nil) : try Request.decodeJSON(DisplayBody.self, from: buffer)
            let (link, token) = try await links.create(wall: name, kind: .display, access: .display, label: try Self.title(body.label),
                                                       expiresAt: nil, maxUses: nil, by: principal.actor)
            return jsonResponse(link.json(token: token), status: .created)
        }
        group.get("walls/:name/links") { _, context in
            try context.require(.editor)
            let name = try Self.name(context)
            _ = try await store.get(name)
            return jsonResponse("{\"links\":[" + (try await links.list(wall: name)).map { $0.json() }.joined(separator: ",") + "]}")
        }
        group.delete("walls/:name/links/:link") { _, context in
            try context.require(.editor)
            let name = try Self.name(context)
            let id = try context.id("link", entity: "link")
            guard try await links.revoke(id, wall: name) != nil else { throw HubError.notFound("wall '\(name)' has no link \(id)") }
            registry.announceAccountChanged("wall_link:\(id)")
            return Response(status: .noContent)
        }
    }

    /// Reading a wall: a signed-in viewer or better (invites read like viewers), or a display link of this wall.
    @discardableResult
    static func requireRead(_ context: HubRequestContext, wall: String) throws -> Principal {
        if let principal = context.principal, let scope = principal.scope, scope.access == WallLinks.Access.display.rawValue {
            guard scope.wall == wall else { throw HubError.forbidden("this display link watches wall '\(scope.wall)' only") }
            return principal
        }
        return try context.require(.viewer)
    }

    /// Changing cells and audio: an editor or better, or an operator invite of this wall.
    static func requireOperate(_ context: HubRequestContext, wall: String) throws -> Principal {
        if let principal = context.principal, let scope = principal.scope {
            guard scope.wall == wall, scope.access == WallLinks.Access.operator.rawValue else {
                throw HubError.forbidden(scope.access == WallLinks.Access.operator.rawValue
                    ? "this invite operates wall '\(scope.wall)' only" : "this link may watch, not change, the wall")
            }
            return principal
        }
        return try context.require(.editor)
    }

    static func name(_ context: HubRequestContext) throws -> String {
        guard let name = context.parameters.get("name"), Wall.isValidName(name) else {
            throw HubError.notFound("no wall named '\((context.parameters.get("name") ?? "").prefix(60))'")
        }
        return name
    }

    static func cellNumber(_ context: HubRequestContext) throws -> Int {
        guard let raw = context.parameters.get("cell"), let number = Int(raw), (1...(Wall.maxSide * Wall.maxSide)).contains(number) else {
            throw HubError.notFound("cells are numbered from 1, row by row; '\((context.parameters.get("cell") ?? "").prefix(20))' is not a cell")
        }
        return number
    }

    static func grid(columns: Int, rows: Int) throws -> (Int, Int) {
        guard (1...Wall.maxSide).contains(columns), (1...Wall.maxSide).contains(rows) else {
            throw HubError.validation("columns and rows must each be from 1 to \(Wall.maxSide)")
        }
        return (columns, rows)
    }

    static func title(_ title: String?) throws -> String? {
        guard let title else { return nil }
        let trimmed = title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count <= 200 else { throw HubError.validation("title must be at most 200 characters") }
        return trimmed.isEmpty ? nil : trimmed
    }

    /// Exactly one of `stream_id`, `recording_id` and `url`, each of which must exist (or be a plain http(s)
    /// URL); the fallback must be a stream; rotation a quarter turn; rewind at most a week.
    func validate(_ body: CellBody, number: Int) async throws -> WallCell {
        let given = [body.streamID != nil, body.recordingID != nil, body.url != nil].filter { $0 }.count
        guard given == 1 else { throw HubError.validation("give exactly one of stream_id, recording_id or url") }
        var cell = WallCell(cell: number)
        if let id = body.streamID {
            guard (try? await registry.stream(id)) != nil else { throw HubError.validation("stream_id \(id) does not exist") }
            cell.streamID = id
        }
        if let id = body.recordingID {
            guard id.utf8.count == 32, id.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }),
                  try await recorder.recordingExists(id)
            else { throw HubError.validation("recording_id '\(id.prefix(40))' is not a recording") }
            cell.recordingID = id
        }
        if let url = body.url {
            let trimmed = url.trimmingCharacters(in: .whitespaces)
            guard trimmed.utf8.count <= 2048, let parsed = URLComponents(string: trimmed), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
                  parsed.host?.isEmpty == false, parsed.user == nil, parsed.password == nil
            else { throw HubError.validation("url must be an http(s) URL without credentials, at most 2048 characters") }
            cell.url = trimmed
        }
        if let fallback = body.fallbackStreamID {
            guard (try? await registry.stream(fallback)) != nil else { throw HubError.validation("fallback_stream_id \(fallback) does not exist") }
            cell.fallbackStreamID = fallback
        }
        if let rewind = body.rewindSeconds {
            guard (0...(7 * 86_400)).contains(rewind) else { throw HubError.validation("rewind_seconds must be from 0 to 604800 (a week)") }
            cell.rewindSeconds = rewind == 0 ? nil : rewind
        }
        if let rotation = body.rotation {
            guard [0, 90, 180, 270].contains(rotation) else { throw HubError.validation("rotation must be 0, 90, 180 or 270") }
            cell.rotation = rotation
        }
        cell.blurred = body.blurred ?? false
        return cell
    }
}
