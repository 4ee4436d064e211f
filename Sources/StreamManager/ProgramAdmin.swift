import Foundation
import HubCore
import HubStore
import SQLKit

/// `streamhub program list|start|stop`: run-state changes straight in the database. A running server
/// notices within ``ProgramRenderers/reconcileInterval`` (its renderers compare versions with the database),
/// so the CLI works with or without the server up.
public enum ProgramAdmin {
    /// One line per program: name, state, size and frame rate, layers.
    public static func list(database: HubDatabase) async throws -> String {
        let rows = try await database.sql.raw("""
            SELECT p.name, p.state, p.width, p.height, p.fps, (SELECT COUNT(*) FROM program_layers l WHERE l.program = p.name) AS layers
            FROM programs p ORDER BY p.name
            """).all()
        guard !rows.isEmpty else { return "no programs" }
        return try rows.map { row in
            let name = try row.decode(column: "name", as: String.self)
            let state = try row.decode(column: "state", as: String.self)
            let size = "\(try row.decode(column: "width", as: Int.self))x\(try row.decode(column: "height", as: Int.self))"
            return "\(name)\t\(state)\t\(size)@\(try row.decode(column: "fps", as: Int.self))\t\(try row.decode(column: "layers", as: Int.self)) layers"
        }.joined(separator: "\n")
    }

    /// Sets a program to run (`running`) or not (`stopped`); answers a line saying so.
    public static func setState(_ name: String, running: Bool, database: HubDatabase) async throws -> String {
        guard Program.isValidName(name) else { throw HubError.validation("no program named '\(name.prefix(60))'") }
        let state = running ? Program.State.running : .stopped
        let rows = try await database.sql.raw("""
            UPDATE programs SET state = \(bind: state.rawValue), version = version + 1, updated_at = \(bind: Timestamp.now())
            WHERE name = \(bind: name) RETURNING name
            """).all()
        guard !rows.isEmpty else { throw HubError.notFound("no program named '\(name)'") }
        return "program \(name): \(running ? "started" : "stopped") (a running server follows within \(Int(ProgramRenderers.reconcileInterval.components.seconds)) s)"
    }
}
