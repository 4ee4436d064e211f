import SQLKit

/// One versioned schema change. Migrations run in name order, each once, each in its own transaction
/// together with the row that records it.
public protocol Migration: Sendable {
    /// A unique, sortable name, e.g. `0001-core-event-payloads`. Never renamed once shipped.
    var name: String { get }
    func prepare(on database: any SQLDatabase, kind: HubDatabase.Kind) async throws
}
