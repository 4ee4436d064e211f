import Foundation
import HubCore
import HubStore
import NIOCore
import Registry
import SQLKit
import Synchronization

/// What discovery never turns into a stream: links, domains, chat channels and authors.
///
/// The lists live in the database and in memory; ingest reads the memory copy, which is reloaded after
/// every change here and, through the bus, after changes on other instances.
public final class IgnoreLists: Sendable {
    /// The kinds of entry.
    public enum EntryType: String, CaseIterable, Sendable {
        /// A stream link (compared in canonical form).
        case url
        /// A host and its subdomains.
        case domain
        /// A chat channel (a Twitch channel without '#', or a Discord channel id), on any source.
        case channel
        /// A chat author on any source.
        case author
        /// A Twitch user.
        case twitchUser = "twitch_user"
        /// A Discord user.
        case discordUser = "discord_user"

        /// Brings a value to the form it is stored and compared in, or throws saying what is wrong.
        func normalize(_ raw: String) throws -> String {
            let value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !value.isEmpty, value.count <= 2048 else { throw HubError.validation("\(rawValue) entries must be 1-2048 characters") }
            switch self {
            case .url:
                do { return try StreamLink(value).url } catch { throw HubError.validation("'\(value.prefix(80))' is not a valid link: \(error)") }
            case .domain:
                var host = value.lowercased()
                if let link = try? StreamLink(host), let parsed = URLComponents(string: link.url)?.host, host.contains("/") || host.contains(":") {
                    host = parsed
                }
                while host.hasPrefix("*.") || host.hasPrefix(".") { host.removeFirst(host.hasPrefix("*.") ? 2 : 1) }
                if host.hasPrefix("www.") { host.removeFirst(4) }
                guard host.contains("."), host.count <= 253, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else {
                    throw HubError.validation("'\(value.prefix(80))' is not a domain name")
                }
                return host
            case .channel, .author, .twitchUser, .discordUser:
                var name = value.lowercased()
                if self != .author, name.hasPrefix("#") { name.removeFirst() }
                if name.hasPrefix("@") { name.removeFirst() }
                guard !name.isEmpty, name.count <= 200 else { throw HubError.validation("\(rawValue) entries must be 1-200 characters") }
                return name
            }
        }
    }

    struct Snapshot: Sendable {
        var values: [EntryType: Set<String>] = [:]
        func contains(_ type: EntryType, _ value: String) -> Bool { values[type]?.contains(value) ?? false }
    }

    static let changedEvent = "internal.ignore_lists_changed"

    let database: HubDatabase
    let bus: EventBus
    private let snapshot = Mutex(Snapshot())

    init(database: HubDatabase, bus: EventBus) {
        self.database = database
        self.bus = bus
    }

    /// Reads the lists from the database into memory.
    func reload() async throws {
        let rows = try await database.sql.raw("SELECT type, value FROM ignore_entries").all()
        var fresh = Snapshot()
        for row in rows {
            guard let type = EntryType(rawValue: try row.decode(column: "type", as: String.self)) else { continue }
            fresh.values[type, default: []].insert(try row.decode(column: "value", as: String.self))
        }
        snapshot.withLock { $0 = fresh }
    }

    /// Why a message from this channel and author is ignored, or `nil`.
    func ignoresMessage(source: String, channel: String?, author: String?) -> String? {
        let lists = snapshot.withLock { $0 }
        if let channel, lists.contains(.channel, Self.plain(channel)) { return "channel" }
        guard let author else { return nil }
        let name = Self.plain(author)
        if lists.contains(.author, name) { return "author" }
        if source == "twitch", lists.contains(.twitchUser, name) { return "author" }
        if source == "discord", lists.contains(.discordUser, name) { return "author" }
        return nil
    }

    /// Why this link is ignored, or `nil`.
    func ignoresLink(_ link: StreamLink) -> String? {
        let lists = snapshot.withLock { $0 }
        if lists.contains(.url, link.url) { return "url" }
        guard let host = URLComponents(string: link.url)?.host?.lowercased() else { return nil }
        var candidate = Substring(host)
        while true {
            if lists.contains(.domain, String(candidate)) { return "domain" }
            guard let dot = candidate.firstIndex(of: ".") else { break }
            candidate = candidate[candidate.index(after: dot)...]
            if !candidate.contains(".") { break }
        }
        return nil
    }

    static func plain(_ name: String) -> String {
        var name = name.lowercased().trimmingCharacters(in: .whitespaces)
        if name.hasPrefix("#") || name.hasPrefix("@") { name.removeFirst() }
        return name
    }

    // MARK: Writes

    struct NewEntry: Decodable, Sendable {
        let type: String
        let value: String
        let note: String?
    }

    struct ImportResult {
        var added: [String] = []
        var existing = 0
        var invalid: [(value: String, error: String)] = []
    }

    /// Adds entries (bulk import is the same call); existing ones are counted, invalid ones reported,
    /// and nothing is written when `dryRun` is set.
    func add(_ entries: [NewEntry], by actor: String, dryRun: Bool = false) async throws -> ImportResult {
        var result = ImportResult()
        var valid: [(EntryType, String, String?)] = []
        var seen: Set<String> = []
        for entry in entries {
            guard let type = EntryType(rawValue: entry.type) else {
                result.invalid.append((entry.value, "type must be one of " + EntryType.allCases.map(\.rawValue).joined(separator: ", ")))
                continue
            }
            do {
                let value = try type.normalize(entry.value)
                if let note = entry.note, note.count > 500 { throw HubError.validation("note must be at most 500 characters") }
                guard seen.insert(type.rawValue + "\u{0}" + value).inserted else { result.existing += 1; continue }
                valid.append((type, value, entry.note))
            } catch let error as HubError {
                result.invalid.append((entry.value, error.message))
            }
        }
        let now = Timestamp.now()
        let candidates = valid
        let added = try await database.transaction { db -> [String] in
            var added: [String] = []
            for (type, value, note) in candidates {
                if try await db.raw("SELECT id FROM ignore_entries WHERE type = \(bind: type.rawValue) AND value = \(bind: value)").first() != nil {
                    continue
                }
                if !dryRun {
                    try await db.raw("""
                        INSERT INTO ignore_entries (type, value, note, created_by, created_at)
                        VALUES (\(bind: type.rawValue), \(bind: value), \(bind: note), \(bind: actor), \(bind: now))
                        """).run()
                }
                added.append(type.rawValue + ":" + value)
            }
            return added
        }
        result.added = added
        result.existing += valid.count - added.count
        if !dryRun && !added.isEmpty { try await changed() }
        return result
    }

    func remove(_ id: Int64) async throws {
        guard try await database.sql.raw("SELECT id FROM ignore_entries WHERE id = \(bind: id)").first() != nil else {
            throw HubError.notFound("no ignore list entry with id \(id)")
        }
        try await database.sql.raw("DELETE FROM ignore_entries WHERE id = \(bind: id)").run()
        try await changed()
    }

    private func changed() async throws {
        try await reload()
        bus.publish(type: Self.changedEvent, payload: ByteBuffer(string: "{}"), visibility: .nobody)
    }

    // MARK: Reads

    func list(type: EntryType?, paging: Paging) async throws -> (items: [String], total: Int) {
        let filter: SQLQueryString = type.map { "WHERE type = \(bind: $0.rawValue)" } ?? ""
        let total = try await database.sql.raw("SELECT COUNT(*) AS n FROM ignore_entries " + filter).first()?.decode(column: "n", as: Int.self) ?? 0
        let rows = try await database.sql.raw("""
            SELECT id, type, value, note, created_by, created_at FROM ignore_entries \(filter)
            ORDER BY id LIMIT \(bind: paging.perPage) OFFSET \(bind: paging.offset)
            """).all()
        let items = try rows.map { row in
            JSONText.object([
                ("id", .int(try row.decode(column: "id", as: Int.self))),
                ("type", .string(try row.decode(column: "type", as: String.self))),
                ("value", .string(try row.decode(column: "value", as: String.self))),
                ("note", try row.decode(column: "note", as: String?.self).map(JSONText.Value.string) ?? .null),
                ("created_by", try row.decode(column: "created_by", as: String?.self).map(JSONText.Value.string) ?? .null),
                ("created_at", .string(Timestamp.iso8601(try row.decode(column: "created_at", as: Double.self)))),
            ])
        }
        return (items, total)
    }

    /// The Streamwall link monitor's shape: `{"twitch_users","discord_users","urls","domains"}` (authors
    /// ignored on every source are in both user lists), plus `channels`.
    func byType() -> String {
        let lists = snapshot.withLock { $0 }
        func sorted(_ types: EntryType...) -> [String] { Set(types.flatMap { lists.values[$0] ?? [] }).sorted() }
        return JSONText.object([
            ("twitch_users", .strings(sorted(.twitchUser, .author))), ("discord_users", .strings(sorted(.discordUser, .author))),
            ("urls", .strings(sorted(.url))), ("domains", .strings(sorted(.domain))), ("channels", .strings(sorted(.channel))),
        ])
    }
}
