import Foundation
import HubCore
import Registry

/// CSV import of streams: a plan (what would be created, changed, left alone, or refused, row by row)
/// that a dry run answers and a real run applies. Empty cells leave a field as it is.
struct StreamsImport: Sendable {
    let registry: RegistryService

    struct Row: Sendable {
        enum Action: String, Sendable { case create, update, unchanged, error }
        let line: Int
        let link: String
        var action: Action
        var streamID: Int64?
        var changes: [(field: String, before: String, after: String)] = []
        var error: String?
        var input: StreamInput

        var json: String {
            let changed = "{" + changes.map { JSONText.render(.string($0.field)) + ":{\"before\":" + $0.before + ",\"after\":" + $0.after + "}" }.joined(separator: ",") + "}"
            return JSONText.object([
                ("line", .int(line)), ("link", .string(link)), ("action", .string(action.rawValue)),
                ("stream_id", streamID.map { .int(Int($0)) } ?? .null), ("changes", .raw(changed)), ("error", error.map(JSONText.Value.string) ?? .null),
            ])
        }
    }

    struct Plan: Sendable {
        var rows: [Row]

        func json(dryRun: Bool) -> String {
            func count(_ action: Row.Action) -> Int { rows.filter { $0.action == action }.count }
            return JSONText.object([
                ("dry_run", .bool(dryRun)),
                ("summary", .raw(JSONText.object([("create", .int(count(.create))), ("update", .int(count(.update))),
                                                  ("unchanged", .int(count(.unchanged))), ("error", .int(count(.error)))]))),
                ("rows", .raw("[" + rows.map(\.json).joined(separator: ",") + "]")),
            ])
        }
    }

    /// Header names (lowercased, spaces and '_' removed) to the field they fill.
    static let headerFields: [String: String] = [
        "source": "source", "platform": "platform", "link": "link", "url": "link", "status": "status", "title": "title",
        "city": "city", "state": "state", "notes": "notes", "kind": "kind", "orientation": "orientation", "postedby": "posted_by",
        "pinned": "is_pinned", "ispinned": "is_pinned", "archived": "is_archived", "isarchived": "is_archived",
    ]

    func plan(_ text: String) async throws -> Plan {
        let table: [(line: Int, fields: [String])]
        do { table = try StreamsCSV.parse(text) } catch { throw HubError.validation("the CSV cannot be read: \(error)") }
        guard let header = table.first else { throw HubError.validation("the CSV is empty; it needs a header row naming at least Link") }
        let fields = header.fields.map { Self.headerFields[$0.lowercased().replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "_", with: "")] }
        guard let linkColumn = fields.firstIndex(of: "link") else {
            throw HubError.validation("the header row must name a Link (or URL) column; it has: " + header.fields.prefix(20).joined(separator: ", "))
        }
        var rows: [Row] = []
        var seen: [String: Int] = [:]
        for (line, cells) in table.dropFirst() {
            let rawLink = linkColumn < cells.count ? cells[linkColumn].trimmingCharacters(in: .whitespaces) : ""
            if rawLink.isEmpty && cells.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            var row = Row(line: line, link: rawLink, action: .error, input: StreamInput())
            do {
                row.input = try Self.input(cells, fields: fields)
                guard let link = try? StreamLink(rawLink) else { throw HubError.validation("'\(rawLink.prefix(100))' is not a valid http(s) link") }
                row = Row(line: line, link: link.url, action: .error, input: row.input)
                if let earlier = seen[link.url] { throw HubError.validation("the same link is on line \(earlier) already") }
                seen[link.url] = line
                if let current = try await registry.stream(link: link.url) {
                    row.streamID = current.id
                    row.changes = try registry.preview(row.input, on: current)
                    row.action = row.changes.isEmpty ? .unchanged : .update
                } else {
                    row.changes = try registry.preview(row.input, on: nil)
                    row.action = .create
                }
            } catch let error as HubError {
                row.action = .error
                row.error = error.message
            }
            rows.append(row)
        }
        return Plan(rows: rows)
    }

    /// Applies a plan row by row; a row that fails now (a concurrent change, say) is marked as an error.
    func apply(_ plan: Plan, by principal: Principal, requestID: String?) async throws {
        for row in plan.rows {
            switch row.action {
            case .create: _ = try await registry.discover(row.input, by: principal, requestID: requestID)
            case .update: if let id = row.streamID { try await registry.apply(row.input, to: id, action: "import", by: principal, requestID: requestID) }
            case .unchanged, .error: continue
            }
        }
    }

    static func input(_ cells: [String], fields: [String?]) throws -> StreamInput {
        var input = StreamInput()
        for (index, field) in fields.enumerated() {
            guard let field, index < cells.count else { continue }
            var value = cells[index].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("'") && value.count > 1, let second = value.dropFirst().first, "=+-@".contains(second) { value.removeFirst() }
            guard !value.isEmpty else { continue }
            switch field {
            case "link": input.link = .set(value)
            case "source": input.source = .set(value)
            case "platform": input.platform = .set(value)
            case "status": input.status = .set(value)
            case "title": input.title = .set(value)
            case "city": input.city = .set(value)
            case "state": input.state = .set(value)
            case "notes": input.notes = .set(value)
            case "kind": input.kind = .set(value)
            case "orientation": input.orientation = .set(value)
            case "posted_by": input.postedBy = .set(value)
            case "is_pinned", "is_archived":
                let flag: Bool
                switch value.lowercased() {
                case "true", "yes", "y", "1", "x": flag = true
                case "false", "no", "n", "0": flag = false
                default: throw HubError.validation("\(field == "is_pinned" ? "Pinned" : "Archived") must be TRUE or FALSE, not '\(value.prefix(20))'")
                }
                if field == "is_pinned" { input.isPinned = flag } else { input.isArchived = flag }
            default: continue
            }
        }
        return input
    }
}
