import Foundation
import HubCore
import HubStore
import NIOCore
import SQLKit

/// Walls in the database. Every change is one transaction on one wall (the wall row is locked, so changes
/// to one wall are serialised while different cells' changes all stay), bumps the wall's version, and is
/// announced as `wall_changed` with the whole new state — to signed-in viewers and the wall's displays.
public struct WallStore: Sendable {
    public static let changedEvent = "wall_changed"

    let database: HubDatabase
    let bus: EventBus

    /// What a write changed, for the event.
    struct Change: Sendable {
        var op: String
        var fields: [(String, JSONText.Value)] = []
    }

    public func list() async throws -> [Wall] {
        let rows = try await database.sql.raw("SELECT \(unsafeRaw: Wall.columns) FROM walls ORDER BY name").all()
        let cellRows = try await database.sql.raw("SELECT wall, \(unsafeRaw: WallCell.columns) FROM wall_cells ORDER BY wall, cell").all()
        var cells: [String: [WallCell]] = [:]
        for row in cellRows { cells[try row.decode(column: "wall", as: String.self), default: []].append(try WallCell(row: row)) }
        return try rows.map { row in try Wall(row: row, cells: cells[try row.decode(column: "name", as: String.self)] ?? []) }
    }

    /// One wall (404 when there is none).
    public func get(_ name: String) async throws -> Wall {
        guard let wall = try await Self.load(name, on: database.sql, lock: false, kind: database.kind) else { throw Self.notFound(name) }
        return wall
    }

    static func notFound(_ name: String) -> HubError { HubError.notFound("no wall named '\(name.prefix(60))'") }

    static func load(_ name: String, on db: any SQLDatabase, lock: Bool, kind: HubDatabase.Kind) async throws -> Wall? {
        let suffix: SQLQueryString = lock && kind == .postgres ? " FOR UPDATE" : ""
        guard let row = try await db.raw("SELECT \(unsafeRaw: Wall.columns) FROM walls WHERE name = \(bind: name)" + suffix).first() else { return nil }
        let cells = try await db.raw("SELECT \(unsafeRaw: WallCell.columns) FROM wall_cells WHERE wall = \(bind: name) ORDER BY cell").all()
        return try Wall(row: row, cells: cells.map(WallCell.init(row:)))
    }

    public func create(name: String, title: String?, columns: Int, rows: Int, by actor: String) async throws -> Wall {
        let now = Timestamp.now()
        let kind = database.kind
        let wall = try await database.transaction { db -> Wall in
            if try await db.raw("SELECT name FROM walls WHERE name = \(bind: name)").first() != nil {
                throw HubError(.conflict, code: "wall_exists", message: "a wall named '\(name)' exists already",
                               headers: [.location: "/api/v1/walls/\(name)"])
            }
            try await db.raw("""
                INSERT INTO walls (name, title, columns, rows, volume, version, created_by, created_at, updated_at)
                VALUES (\(bind: name), \(bind: title), \(bind: columns), \(bind: rows), 1, 1, \(bind: actor), \(bind: now), \(bind: now))
                """).run()
            guard let wall = try await Self.load(name, on: db, lock: false, kind: kind) else { throw HubError.internalError() }
            return wall
        }
        announce(wall, Change(op: "created"), by: actor)
        return wall
    }

    public func delete(_ name: String, by actor: String) async throws {
        let deleted = try await database.transaction { db -> Wall in
            guard let wall = try await Self.load(name, on: db, lock: true, kind: database.kind) else { throw Self.notFound(name) }
            try await db.raw("DELETE FROM wall_cells WHERE wall = \(bind: name)").run()
            try await db.raw("DELETE FROM walls WHERE name = \(bind: name)").run()
            return wall
        }
        announce(deleted, Change(op: "deleted"), by: actor)
    }

    /// Runs `change` on the locked wall inside one transaction, bumps its version and announces the result.
    func mutate(_ name: String, by actor: String, _ change: @escaping @Sendable (Wall, any SQLDatabase) async throws -> Change) async throws -> Wall {
        let now = Timestamp.now()
        let kind = database.kind
        let (wall, description) = try await database.transaction { db -> (Wall, Change) in
            guard let current = try await Self.load(name, on: db, lock: true, kind: kind) else { throw Self.notFound(name) }
            let description = try await change(current, db)
            try await db.raw("UPDATE walls SET version = version + 1, updated_at = \(bind: now) WHERE name = \(bind: name)").run()
            guard let wall = try await Self.load(name, on: db, lock: false, kind: kind) else { throw Self.notFound(name) }
            return (wall, description)
        }
        announce(wall, description, by: actor)
        return wall
    }

    /// Changes the title or the grid size; cells that no longer fit are removed.
    public func update(_ name: String, title: String??, columns: Int?, rows: Int?, by actor: String) async throws -> Wall {
        try await mutate(name, by: actor) { wall, db in
            let newColumns = columns ?? wall.columns, newRows = rows ?? wall.rows
            if let title { try await db.raw("UPDATE walls SET title = \(bind: title) WHERE name = \(bind: name)").run() }
            if newColumns != wall.columns || newRows != wall.rows {
                try await db.raw("UPDATE walls SET columns = \(bind: newColumns), rows = \(bind: newRows) WHERE name = \(bind: name)").run()
                // Keep what is shown where it was: a cell keeps its row and column, or goes when they are gone.
                for cell in wall.cells {
                    let row = (cell.cell - 1) / wall.columns, column = (cell.cell - 1) % wall.columns
                    if row >= newRows || column >= newColumns {
                        try await db.raw("DELETE FROM wall_cells WHERE wall = \(bind: name) AND cell = \(bind: cell.cell)").run()
                    } else if newColumns != wall.columns {
                        try await db.raw("UPDATE wall_cells SET cell = \(bind: -(row * newColumns + column + 1)) WHERE wall = \(bind: name) AND cell = \(bind: cell.cell)").run()
                    }
                }
                // Renumbered through negative numbers, so no two cells collide on the way.
                try await db.raw("UPDATE wall_cells SET cell = -cell WHERE wall = \(bind: name) AND cell < 0").run()
                if let audio = wall.audioCell {
                    let row = (audio - 1) / wall.columns, column = (audio - 1) % wall.columns
                    let moved: Int? = row < newRows && column < newColumns ? row * newColumns + column + 1 : nil
                    try await db.raw("UPDATE walls SET audio_cell = \(bind: moved) WHERE name = \(bind: name)").run()
                }
            }
            return Change(op: "updated", fields: [("columns", .int(newColumns)), ("rows", .int(newRows))])
        }
    }

    public func setCell(_ name: String, _ number: Int, to cell: WallCell, by actor: String) async throws -> Wall {
        try await mutate(name, by: actor) { wall, db in
            try Self.requireCell(number, in: wall)
            let now = Timestamp.now()
            try await db.raw("DELETE FROM wall_cells WHERE wall = \(bind: name) AND cell = \(bind: number)").run()
            try await db.raw("""
                INSERT INTO wall_cells (wall, cell, stream_id, recording_id, url, fallback_stream_id, rewind_seconds, blurred, rotation, updated_by, updated_at)
                VALUES (\(bind: name), \(bind: number), \(bind: cell.streamID), \(bind: cell.recordingID), \(bind: cell.url), \(bind: cell.fallbackStreamID),
                        \(bind: cell.rewindSeconds), \(bind: cell.blurred), \(bind: cell.rotation), \(bind: actor), \(bind: now))
                """).run()
            var stored = cell
            stored.cell = number
            return Change(op: "cell_set", fields: [("cell", .int(number)), ("value", .raw(stored.json))])
        }
    }

    public func clearCell(_ name: String, _ number: Int, by actor: String) async throws -> Wall {
        try await mutate(name, by: actor) { wall, db in
            try Self.requireCell(number, in: wall)
            try await db.raw("DELETE FROM wall_cells WHERE wall = \(bind: name) AND cell = \(bind: number)").run()
            if wall.audioCell == number { try await db.raw("UPDATE walls SET audio_cell = NULL WHERE name = \(bind: name)").run() }
            return Change(op: "cell_cleared", fields: [("cell", .int(number))])
        }
    }

    /// Puts the audio on one cell (or none) and sets the wall's volume.
    public func setAudio(_ name: String, cell: Int?, volume: Double?, by actor: String) async throws -> Wall {
        try await mutate(name, by: actor) { wall, db in
            if let cell { try Self.requireCell(cell, in: wall) }
            try await db.raw("UPDATE walls SET audio_cell = \(bind: cell), volume = \(bind: volume ?? wall.volume) WHERE name = \(bind: name)").run()
            return Change(op: "audio", fields: [("cell", cell.map { .int($0) } ?? .null), ("volume", .double(volume ?? wall.volume))])
        }
    }

    static func requireCell(_ number: Int, in wall: Wall) throws {
        guard (1...wall.cellCount).contains(number) else {
            throw HubError.notFound("wall '\(wall.name)' has cells 1 to \(wall.cellCount); there is no cell \(number)")
        }
    }

    /// `wall_changed`: `{"wall": name, "change": {"op", …}, "by": actor, "state": <the wall>}` (`state` is
    /// null once deleted), for signed-in viewers and the wall's displays.
    func announce(_ wall: Wall, _ change: Change, by actor: String) {
        let payload = JSONText.object([
            ("wall", .string(wall.name)), ("change", .raw(JSONText.object([("op", .string(change.op))] + change.fields))),
            ("by", .string(actor)), ("version", .int(Int(wall.version))), ("state", change.op == "deleted" ? .null : .raw(wall.json)),
        ])
        bus.publish(type: Self.changedEvent, payload: ByteBuffer(string: payload), visibility: EventVisibility.viewers.adding(wall: wall.name))
    }
}
