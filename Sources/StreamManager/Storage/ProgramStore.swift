import Foundation
import HubCore
import HubStore
import NIOCore
import SQLKit

/// Programs and their layers in the database. Every change is one transaction on one program (its row is
/// locked on PostgreSQL), bumps the program's version and is announced as `program_changed` — the renderer
/// follows it, and so do the program's pages.
public struct ProgramStore: Sendable {
    public static let changedEvent = "program_changed"

    let database: HubDatabase
    let bus: EventBus

    public func list() async throws -> [Program] {
        let rows = try await database.sql.raw("SELECT \(unsafeRaw: Program.columns) FROM programs ORDER BY name").all()
        let layerRows = try await database.sql.raw("SELECT program, \(unsafeRaw: Layer.columns) FROM program_layers ORDER BY program, z, id").all()
        let outputRows = try await database.sql.raw("SELECT program, \(unsafeRaw: Output.columns) FROM program_outputs ORDER BY program, id").all()
        var layers: [String: [Layer]] = [:]
        for row in layerRows { layers[try row.decode(column: "program", as: String.self), default: []].append(try Layer(row: row)) }
        var outputs: [String: [Output]] = [:]
        for row in outputRows { outputs[try row.decode(column: "program", as: String.self), default: []].append(try Output(row: row)) }
        return try rows.map { row in
            let name = try row.decode(column: "name", as: String.self)
            return try Program(row: row, layers: layers[name] ?? [], outputs: outputs[name] ?? [])
        }
    }

    /// One program (404 when there is none).
    public func get(_ name: String) async throws -> Program {
        guard let program = try await Self.load(name, on: database.sql, lock: false, kind: database.kind) else { throw Self.notFound(name) }
        return program
    }

    static func notFound(_ name: String) -> HubError { HubError.notFound("no program named '\(name.prefix(60))'") }

    static func load(_ name: String, on db: any SQLDatabase, lock: Bool, kind: HubDatabase.Kind) async throws -> Program? {
        let suffix: SQLQueryString = lock && kind == .postgres ? " FOR UPDATE" : ""
        guard let row = try await db.raw("SELECT \(unsafeRaw: Program.columns) FROM programs WHERE name = \(bind: name)" + suffix).first() else {
            return nil
        }
        let layers = try await db.raw("SELECT \(unsafeRaw: Layer.columns) FROM program_layers WHERE program = \(bind: name) ORDER BY z, id").all()
        let outputs = try await db.raw("SELECT \(unsafeRaw: Output.columns) FROM program_outputs WHERE program = \(bind: name) ORDER BY id").all()
        return try Program(row: row, layers: layers.map(Layer.init(row:)), outputs: outputs.map(Output.init(row:)))
    }

    public struct NewProgram: Sendable {
        var name: String
        var title: String?
        var width: Int
        var height: Int
        var fps: Int
        var videoBitrate: Int
        var preset: String
    }

    public func create(_ new: NewProgram, by actor: String) async throws -> Program {
        let now = Timestamp.now()
        let kind = database.kind
        let program = try await database.transaction { db -> Program in
            if try await db.raw("SELECT name FROM programs WHERE name = \(bind: new.name)").first() != nil {
                throw HubError(.conflict, code: "program_exists", message: "a program named '\(new.name)' exists already",
                               headers: [.location: "/api/v1/programs/\(new.name)"])
            }
            try await db.raw("""
                INSERT INTO programs (name, title, width, height, fps, video_bitrate, preset, state, version, created_by, created_at, updated_at)
                VALUES (\(bind: new.name), \(bind: new.title), \(bind: new.width), \(bind: new.height), \(bind: new.fps), \(bind: new.videoBitrate),
                        \(bind: new.preset), 'stopped', 1, \(bind: actor), \(bind: now), \(bind: now))
                """).run()
            guard let program = try await Self.load(new.name, on: db, lock: false, kind: kind) else { throw HubError.internalError() }
            return program
        }
        announce(program, op: "created", by: actor)
        return program
    }

    public func delete(_ name: String, by actor: String) async throws {
        let kind = database.kind
        let deleted = try await database.transaction { db -> Program in
            guard let program = try await Self.load(name, on: db, lock: true, kind: kind) else { throw Self.notFound(name) }
            try await db.raw("DELETE FROM program_layers WHERE program = \(bind: name)").run()
            try await db.raw("DELETE FROM program_outputs WHERE program = \(bind: name)").run()
            try await db.raw("DELETE FROM programs WHERE name = \(bind: name)").run()
            return program
        }
        announce(deleted, op: "deleted", by: actor)
    }

    /// Runs `change` on the locked program inside one transaction, bumps its version and announces the
    /// result. `change` answers what it did (the event's `op`) and, for a layer change, which layer.
    func mutate(_ name: String, by actor: String,
                _ change: @escaping @Sendable (Program, any SQLDatabase, Double) async throws -> (op: String, layer: Int64?)) async throws -> (Program, Int64?) {
        let now = Timestamp.now()
        let kind = database.kind
        let (program, op, layer) = try await database.transaction { db -> (Program, String, Int64?) in
            guard let current = try await Self.load(name, on: db, lock: true, kind: kind) else { throw Self.notFound(name) }
            let (op, layer) = try await change(current, db, now)
            try await db.raw("UPDATE programs SET version = version + 1, updated_at = \(bind: now) WHERE name = \(bind: name)").run()
            guard let program = try await Self.load(name, on: db, lock: false, kind: kind) else { throw HubError.internalError() }
            return (program, op, layer)
        }
        announce(program, op: op, layer: layer, by: actor)
        return (program, layer)
    }

    struct Settings: Sendable {
        var title: String??
        var width: Int?
        var height: Int?
        var fps: Int?
        var videoBitrate: Int?
        var preset: String?
        var audioLayer: Int64??
        var chatChannels: [String]?
    }

    func update(_ name: String, _ settings: Settings, by actor: String) async throws -> Program {
        try await mutate(name, by: actor) { current, db, _ in
            var next = current
            if let title = settings.title { next.title = title }
            if let width = settings.width { next.width = width }
            if let height = settings.height { next.height = height }
            if let fps = settings.fps { next.fps = fps }
            if let bitrate = settings.videoBitrate { next.videoBitrate = bitrate }
            if let preset = settings.preset { next.preset = preset }
            if let audio = settings.audioLayer {
                if let id = audio {
                    guard let layer = current.layers.first(where: { $0.id == id }), layer.kind == .source else {
                        throw HubError.validation("audio_layer_id must be the id of one of this program's source layers")
                    }
                }
                next.audioLayer = audio
            }
            if let chat = settings.chatChannels { next.chatChannels = chat }
            let chat = "[" + next.chatChannels.map { JSONText.render(.string($0)) }.joined(separator: ",") + "]"
            try await db.raw("""
                UPDATE programs SET title = \(bind: next.title), width = \(bind: next.width), height = \(bind: next.height), fps = \(bind: next.fps),
                    video_bitrate = \(bind: next.videoBitrate), preset = \(bind: next.preset), audio_layer = \(bind: next.audioLayer),
                    chat_channels = \(bind: chat)
                WHERE name = \(bind: name)
                """).run()
            return ("updated", nil)
        }.0
    }

    /// Records what the program should be doing (start, stop, pause, resume); the renderer follows.
    func setState(_ name: String, _ state: Program.State, by actor: String) async throws -> Program {
        try await mutate(name, by: actor) { current, db, _ in
            if state == .paused, current.state == .stopped { throw HubError(.conflict, code: "not_running", message: "program '\(name)' is not running") }
            try await db.raw("UPDATE programs SET state = \(bind: state.rawValue) WHERE name = \(bind: name)").run()
            return (state == .running ? (current.state == .paused ? "resumed" : "started") : state == .paused ? "paused" : "stopped", nil)
        }.0
    }

    func addLayer(_ name: String, _ layer: Layer, by actor: String) async throws -> (Program, Layer) {
        let (program, id) = try await mutate(name, by: actor) { current, db, now in
            guard current.layers.count < Program.maxLayers else {
                throw HubError(.conflict, code: "too_many_layers", message: "a program has at most \(Program.maxLayers) layers")
            }
            let z = layer.z == Int.min ? (current.layers.map(\.z).max() ?? 0) + 1 : layer.z
            guard let row = try await db.raw("""
                INSERT INTO program_layers (program, kind, z, visible, x, y, width, height, opacity, text, stream_id, recording_id, url,
                                            community_id, wall, image_id, crop, rewind_seconds, style, updated_at)
                VALUES (\(bind: name), \(bind: layer.kind.rawValue), \(bind: z), \(bind: layer.visible), \(bind: layer.x), \(bind: layer.y),
                        \(bind: layer.width), \(bind: layer.height), \(bind: layer.opacity), \(bind: layer.text), \(bind: layer.streamID),
                        \(bind: layer.recordingID), \(bind: layer.url), \(bind: layer.communityID), \(bind: layer.wall), \(bind: layer.imageID),
                        \(bind: layer.crop?.json), \(bind: layer.rewindSeconds), \(bind: layer.style.json), \(bind: now))
                RETURNING id
                """).first() else { throw HubError.internalError() }
            return ("layer_added", try row.decode(column: "id", as: Int64.self))
        }
        guard let id, let added = program.layers.first(where: { $0.id == id }) else { throw HubError.internalError() }
        return (program, added)
    }

    /// Replaces a layer with `change(current)` (validated by the caller's closure).
    func updateLayer(_ name: String, _ id: Int64, by actor: String, _ change: @escaping @Sendable (Layer) throws -> Layer) async throws -> (Program, Layer) {
        let (program, _) = try await mutate(name, by: actor) { current, db, now in
            guard let layer = current.layers.first(where: { $0.id == id }) else { throw Self.layerNotFound(id, name) }
            let next = try change(layer)
            if current.audioLayer == id, next.kind != .source { throw HubError.validation("layer \(id) carries the program's audio; it stays a source") }
            try await db.raw("""
                UPDATE program_layers SET kind = \(bind: next.kind.rawValue), z = \(bind: next.z), visible = \(bind: next.visible), x = \(bind: next.x),
                    y = \(bind: next.y), width = \(bind: next.width), height = \(bind: next.height), opacity = \(bind: next.opacity),
                    text = \(bind: next.text), stream_id = \(bind: next.streamID), recording_id = \(bind: next.recordingID), url = \(bind: next.url),
                    community_id = \(bind: next.communityID), wall = \(bind: next.wall), image_id = \(bind: next.imageID),
                    crop = \(bind: next.crop?.json), rewind_seconds = \(bind: next.rewindSeconds), style = \(bind: next.style.json), updated_at = \(bind: now)
                WHERE id = \(bind: id) AND program = \(bind: name)
                """).run()
            return ("layer_updated", id)
        }
        guard let updated = program.layers.first(where: { $0.id == id }) else { throw HubError.internalError() }
        return (program, updated)
    }

    func deleteLayer(_ name: String, _ id: Int64, by actor: String) async throws -> Program {
        try await mutate(name, by: actor) { current, db, _ in
            guard current.layers.contains(where: { $0.id == id }) else { throw Self.layerNotFound(id, name) }
            try await db.raw("DELETE FROM program_layers WHERE id = \(bind: id) AND program = \(bind: name)").run()
            if current.audioLayer == id { try await db.raw("UPDATE programs SET audio_layer = NULL WHERE name = \(bind: name)").run() }
            return ("layer_deleted", id)
        }.0
    }

    /// Puts the layers in the order given (bottom first): every layer id exactly once.
    func reorder(_ name: String, _ ids: [Int64], by actor: String) async throws -> Program {
        try await mutate(name, by: actor) { current, db, now in
            guard ids.count == current.layers.count, Set(ids) == Set(current.layers.map(\.id)) else {
                throw HubError.validation("order must list every layer id of the program exactly once (bottom first)")
            }
            for (z, id) in ids.enumerated() {
                try await db.raw("UPDATE program_layers SET z = \(bind: z), updated_at = \(bind: now) WHERE id = \(bind: id) AND program = \(bind: name)").run()
            }
            return ("layers_reordered", nil)
        }.0
    }

    /// Adds an RTMP push target (already checked by the caller).
    func addOutput(_ name: String, url: String, by actor: String) async throws -> (Program, Output) {
        let (program, id) = try await mutate(name, by: actor) { current, db, now in
            guard current.outputs.count < Program.maxOutputs else {
                throw HubError(.conflict, code: "too_many_outputs", message: "a program has at most \(Program.maxOutputs) RTMP outputs")
            }
            guard !current.outputs.contains(where: { $0.url == url }) else {
                throw HubError(.conflict, code: "output_exists", message: "the program pushes to that URL already")
            }
            guard let row = try await db.raw("""
                INSERT INTO program_outputs (program, url, created_by, created_at) VALUES (\(bind: name), \(bind: url), \(bind: actor), \(bind: now))
                RETURNING id
                """).first() else { throw HubError.internalError() }
            return ("output_added", try row.decode(column: "id", as: Int64.self))
        }
        guard let id, let added = program.outputs.first(where: { $0.id == id }) else { throw HubError.internalError() }
        return (program, added)
    }

    func deleteOutput(_ name: String, _ id: Int64, by actor: String) async throws -> Program {
        try await mutate(name, by: actor) { current, db, _ in
            guard current.outputs.contains(where: { $0.id == id }) else { throw HubError.notFound("program '\(name.prefix(60))' has no output \(id)") }
            try await db.raw("DELETE FROM program_outputs WHERE id = \(bind: id) AND program = \(bind: name)").run()
            return ("output_deleted", nil)
        }.0
    }

    static func layerNotFound(_ id: Int64, _ name: String) -> HubError {
        HubError.notFound("program '\(name.prefix(60))' has no layer \(id)")
    }

    /// Announces a change to signed-in viewers: `{"program": name, "op", "layer_id", "layer", "order", "version",
    /// "state", "by"}` — `layer` is the changed layer as the API shows it (`null` once deleted), `order` the
    /// layer ids bottom first (so a page can follow a reorder without asking).
    func announce(_ program: Program, op: String, layer: Int64? = nil, by actor: String) {
        let changed = layer.flatMap { id in program.layers.first { $0.id == id } }
        bus.publish(type: Self.changedEvent, payload: ByteBuffer(string: JSONText.object([
            ("program", .string(program.name)), ("op", .string(op)), ("layer_id", layer.map { .int(Int($0)) } ?? .null),
            ("layer", changed.map { .raw($0.json) } ?? .null),
            ("order", .raw("[" + program.orderedLayers.map { String($0.id) }.joined(separator: ",") + "]")),
            ("version", .int(Int(program.version))), ("state", .string(program.state.rawValue)), ("by", .string(actor)),
        ])), visibility: .viewers)
    }
}
