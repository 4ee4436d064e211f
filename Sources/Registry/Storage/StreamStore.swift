import Foundation
import HubCore
import HubStore
import SQLKit

/// What `GET /streams` asks for, parsed and validated from the query string.
struct StreamQuery: Sendable, Hashable {
    enum Archived: Sendable, Hashable { case hidden, only, any }

    var statuses: [StreamStatus] = []
    var notStatuses: [StreamStatus] = []
    var platforms: [Platform] = []
    var isPinned: Bool?
    var archived: Archived = .hidden
    var city: String?
    var state: String?
    var text: String?
    /// `search=` also matches inside the link; `q=` does not.
    var textIncludesLink = false
    var link: String?
    /// A `search=` that is a link also finds the stream whose canonical link it normalises to.
    var searchLink: String?
    var streamerID: Int64?
    var sort: [(column: String, descending: Bool)] = [("created_at", true)]
    var page = 1
    var perPage = 25

    static let sortable: Set<String> = ["id", "created_at", "updated_at", "source", "status", "city", "state", "platform", "last_live_at", "last_checked_at", "is_pinned", "title"]
    static let maxPerPage = 100

    static func == (lhs: StreamQuery, rhs: StreamQuery) -> Bool { lhs.cacheKey == rhs.cacheKey }
    func hash(into hasher: inout Hasher) { hasher.combine(cacheKey) }

    var cacheKey: String {
        "\(statuses)|\(notStatuses)|\(platforms)|\(String(describing: isPinned))|\(archived)|\(city ?? "")|\(state ?? "")|\(text ?? "")|\(textIncludesLink)|\(link ?? "")|\(searchLink ?? "")|\(streamerID ?? 0)|\(sort.map { "\($0.column)\($0.descending)" })|\(page)|\(perPage)"
    }

    init() {}

    /// Parses the query parameters; anything invalid is a 422 naming the parameter.
    init(parameters: [String: String]) throws {
        func list<T: RawRepresentable & CaseIterable>(_ name: String, _: T.Type) throws -> [T] where T.RawValue == String {
            guard let raw = parameters[name], !raw.isEmpty else { return [] }
            return try raw.split(separator: ",").map { part in
                guard let value = T(rawValue: part.trimmingCharacters(in: .whitespaces).lowercased()) else {
                    throw HubError.validation("\(name) must be \(T.choices) (comma-separated for several)")
                }
                return value
            }
        }
        func bool(_ name: String) throws -> Bool? {
            guard let raw = parameters[name], !raw.isEmpty else { return nil }
            switch raw.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw HubError.validation("\(name) must be true or false")
            }
        }
        func text(_ name: String, limit: Int) throws -> String? {
            guard let raw = parameters[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            guard raw.count <= limit else { throw HubError.validation("\(name) must be at most \(limit) characters") }
            return raw
        }
        func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
            guard let raw = parameters[name], !raw.isEmpty else { return nil }
            guard let value = Int(raw), range.contains(value) else {
                throw HubError.validation("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        statuses = try list("status", StreamStatus.self)
        notStatuses = try list("notStatus", StreamStatus.self) + list("not_status", StreamStatus.self)
        platforms = try list("platform", Platform.self)
        isPinned = try bool("is_pinned")
        if let raw = parameters["is_archived"], !raw.isEmpty {
            switch raw.lowercased() {
            case "true", "1", "yes": archived = .only
            case "false", "0", "no": archived = .hidden
            case "any", "all": archived = .any
            default: throw HubError.validation("is_archived must be true, false or any")
            }
        }
        city = try text("city", limit: StreamLimits.city)
        state = try text("state", limit: StreamLimits.state)
        if let search = try text("search", limit: 200) {
            self.text = search
            textIncludesLink = true
            if search.contains("."), search.contains("/") || search.lowercased().hasPrefix("www.") { searchLink = try? StreamLink(search).url }
        } else {
            self.text = try text("q", limit: 200)
        }
        if let raw = try text("link", limit: StreamLink.maxLength) {
            do { link = try StreamLink(raw).url } catch { throw HubError.validation("link: \(error.description)") }
        }
        streamerID = try integer("streamer_id", in: 1...Int(Int64.max)).map(Int64.init)
        if let raw = try text("sort", limit: 200) {
            sort = try raw.split(separator: ",").map { part in
                var name = part.trimmingCharacters(in: .whitespaces)
                let descending = name.hasPrefix("-")
                if descending { name.removeFirst() }
                guard Self.sortable.contains(name) else {
                    throw HubError.validation("sort must name one of \(Self.sortable.sorted().joined(separator: ", ")), '-' first for descending")
                }
                return (name, descending)
            }
            guard !sort.isEmpty, sort.count <= 4 else { throw HubError.validation("sort names 1 to 4 fields") }
        }
        page = try integer("page", in: 1...100_000) ?? 1
        perPage = try integer("per_page", in: 1...Self.maxPerPage) ?? 25
    }
}

/// SQL for the streams table. Every method takes the database (or transaction) to run on.
enum StreamStore {
    static func get(_ id: Int64, on db: any SQLDatabase, forUpdate: Bool = false, kind: HubDatabase.Kind = .sqlite) async throws -> StreamRecord? {
        let lock: SQLQueryString = forUpdate && kind == .postgres ? " FOR UPDATE" : ""
        return try await db.raw("SELECT \(unsafeRaw: StreamRecord.columns) FROM streams WHERE id = \(bind: id)" + lock).first().map(StreamRecord.init(row:))
    }

    static func find(link: String, on db: any SQLDatabase) async throws -> StreamRecord? {
        try await db.raw("SELECT \(unsafeRaw: StreamRecord.columns) FROM streams WHERE link = \(bind: link)").first().map(StreamRecord.init(row:))
    }

    static func list(_ query: StreamQuery, on db: any SQLDatabase) async throws -> (streams: [StreamRecord], total: Int) {
        let (keys, total) = try await page(query, on: db)
        let loaded = Dictionary(uniqueKeysWithValues: try await load(keys.map(\.id), on: db).map { ($0.id, $0) })
        return (keys.compactMap { loaded[$0.id] }, total)
    }

    /// The streams with these ids (in no particular order).
    static func load(_ ids: [Int64], on db: any SQLDatabase) async throws -> [StreamRecord] {
        guard !ids.isEmpty else { return [] }
        let list = ids.map { "\(bind: $0)" as SQLQueryString }.joined(separator: ", ")
        return try await db.raw("SELECT \(unsafeRaw: StreamRecord.columns) FROM streams WHERE id IN (" + list + ")").all().map(StreamRecord.init(row:))
    }

    /// One page of a list as ids and versions (cheap to read; the caller fills in the streams, mostly
    /// from its cache), and the total count.
    static func page(_ query: StreamQuery, on db: any SQLDatabase) async throws -> (keys: [(id: Int64, version: Int64)], total: Int) {
        var conditions: [SQLQueryString] = []
        switch query.archived {
        case .hidden: conditions.append("is_archived = \(bind: false)")
        case .only: conditions.append("is_archived = \(bind: true)")
        case .any: break
        }
        if !query.statuses.isEmpty {
            conditions.append("status IN (" + query.statuses.map { "\(bind: $0.rawValue)" as SQLQueryString }.joined(separator: ", ") + ")")
        }
        if !query.notStatuses.isEmpty {
            conditions.append("status NOT IN (" + query.notStatuses.map { "\(bind: $0.rawValue)" as SQLQueryString }.joined(separator: ", ") + ")")
        }
        if !query.platforms.isEmpty {
            conditions.append("platform IN (" + query.platforms.map { "\(bind: $0.rawValue)" as SQLQueryString }.joined(separator: ", ") + ")")
        }
        if let pinned = query.isPinned { conditions.append("is_pinned = \(bind: pinned)") }
        if let city = query.city { conditions.append("lower(city) = \(bind: city.lowercased())") }
        if let state = query.state { conditions.append("lower(state) = \(bind: state.lowercased())") }
        if let link = query.link { conditions.append("link = \(bind: link)") }
        if let streamer = query.streamerID { conditions.append("streamer_id = \(bind: streamer)") }
        if let text = query.text {
            let pattern = "%" + escapeLike(text.lowercased()) + "%"
            var columns = ["source", "title", "city", "notes"]
            if query.textIncludesLink { columns += ["link", "posted_link"] }
            var alternatives = columns.map { "lower(\(unsafeRaw: $0)) LIKE \(bind: pattern) ESCAPE '\\'" as SQLQueryString }
            if let searchLink = query.searchLink { alternatives.append("link = \(bind: searchLink)") }
            conditions.append("(" + alternatives.joined(separator: " OR ") + ")")
        }
        let whereClause: SQLQueryString = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let order = query.sort.map { "\($0.column) \($0.descending ? "DESC" : "ASC")" }.joined(separator: ", ") + ", id DESC"
        let offset = (query.page - 1) * query.perPage
        // Two small queries: a window COUNT(*) OVER () would materialise every matching row (10 ms at
        // 5,000 streams on SQLite, against 0.4 ms for these two).
        let total = try await db.raw("SELECT COUNT(*) AS total_count FROM streams" + whereClause).first()?
            .decode(column: "total_count", as: Int.self) ?? 0
        guard total > offset else { return ([], total) }
        let rows = try await db.raw(
            "SELECT id, version FROM streams" + whereClause
                + " ORDER BY \(unsafeRaw: order) LIMIT \(bind: query.perPage) OFFSET \(bind: offset)"
        ).all()
        return (try rows.map { (try $0.decode(column: "id", as: Int64.self), try $0.decode(column: "version", as: Int64.self)) }, total)
    }

    static func escapeLike(_ text: String) -> String {
        var out = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// Inserts a stream built from `changes` (which must carry a link) and answers it; `nil` when a stream
    /// with that link exists already (one statement, where a look-up first would be two).
    /// The row a create writes, with id 0 until it is stored.
    static func newRecord(_ changes: StreamChanges, postedByDefault: String?, at now: Double) throws -> StreamRecord {
        guard let link = changes.link else { throw HubError.validation("link is required") }
        let status = changes.status ?? .unknown
        let isArchived = changes.isArchived ?? false
        var record = StreamRecord(newWithLink: link.url, platform: changes.platform ?? link.platform, at: now)
        record.postedLink = link.posted == link.url ? nil : link.posted
        record.source = changes.source.apply(to: nil)
        record.status = status
        record.title = changes.title.apply(to: nil)
        record.city = changes.city.apply(to: nil)
        record.state = changes.state.apply(to: nil)
        record.notes = changes.notes.apply(to: nil)
        record.isPinned = changes.isPinned ?? false
        record.isArchived = isArchived
        record.postedBy = changes.postedBy.apply(to: nil) ?? postedByDefault
        record.kind = changes.kind ?? .video
        record.orientation = changes.orientation.apply(to: nil)
        record.streamerID = changes.streamerID.apply(to: nil)
        record.startedAt = status == .live ? now : nil
        record.endedAt = isArchived ? now : nil
        record.lastCheckedAt = changes.lastCheckedAt.apply(to: nil)
        record.lastLiveAt = changes.lastLiveAt.apply(to: nil) ?? (status == .live ? now : nil)
        record.version = 1
        return record
    }

    /// `INSERT INTO streams … VALUES …` of a new record (its id comes from the database).
    static func insertStatement(_ r: StreamRecord) -> SQLQueryString {
        """
        INSERT INTO streams (link, posted_link, source, platform, status, title, city, state, notes, is_pinned, is_archived, posted_by, kind,
            orientation, streamer_id, started_at, ended_at, last_checked_at, last_live_at, created_at, updated_at, version)
        VALUES (\(bind: r.link), \(bind: r.postedLink), \(bind: r.source), \(bind: r.platform.rawValue), \(bind: r.status.rawValue), \(bind: r.title),
            \(bind: r.city), \(bind: r.state), \(bind: r.notes), \(bind: r.isPinned), \(bind: r.isArchived), \(bind: r.postedBy),
            \(bind: r.kind.rawValue), \(bind: r.orientation?.rawValue), \(bind: r.streamerID), \(bind: r.startedAt), \(bind: r.endedAt),
            \(bind: r.lastCheckedAt), \(bind: r.lastLiveAt), \(bind: r.createdAt), \(bind: r.updatedAt), \(bind: r.version))
        ON CONFLICT (link) DO NOTHING
        """
    }

    static func insert(_ changes: StreamChanges, postedByDefault: String?, at now: Double, on db: any SQLDatabase) async throws -> StreamRecord? {
        let record = try newRecord(changes, postedByDefault: postedByDefault, at: now)
        let row = try await db.raw("\(insertStatement(record)) RETURNING \(unsafeRaw: StreamRecord.columns)").first()
        return try row.map(StreamRecord.init(row:))
    }

    /// PostgreSQL only: a new stream, its audit entry and its change-log entry in one statement — atomic
    /// without a transaction, one round trip instead of five. Answers the stored stream and its change's
    /// event id, or nil when the link is taken (nothing written).
    static func insertAudited(_ record: StreamRecord, actor: String, requestID: String?, changeType: String, at now: Double,
                              on db: any SQLDatabase) async throws -> (stream: StreamRecord, eventID: Int64)? {
        let changes = AuditLog.changes(before: nil, after: record.auditFields)
        // The change's body is the stream's JSON, whose id only the database knows: `{"id":` + id + the rest.
        let json = record.json
        let prefix = "{\"id\":0"
        precondition(json.hasPrefix(prefix), "a stream's JSON starts with its id")
        let rest = String(json.dropFirst(prefix.count))
        guard let row = try await db.raw("""
            WITH s AS (\(insertStatement(record)) RETURNING \(unsafeRaw: StreamRecord.columns)),
            a AS (INSERT INTO audit_log (actor, action, entity, entity_id, changes, request_id, at)
                  SELECT \(bind: actor), 'create', 'stream', s.id::text, \(bind: changes), \(bind: requestID), \(bind: now) FROM s),
            c AS (INSERT INTO registry_changes (type, body, at) SELECT \(bind: changeType), '{"id":' || s.id || \(bind: rest), \(bind: now) FROM s RETURNING id)
            SELECT s.*, c.id AS event_id FROM s CROSS JOIN c
            """).first() else { return nil }
        let stream = try StreamRecord(row: row)
        var expected = record
        expected.id = stream.id
        assert(stream == expected, "the stored stream differs from the one its audit and change entries describe")
        return (stream, try row.decode(column: "event_id", as: Int64.self))
    }

    /// Applies `changes` to `current` (the caller read it in the same transaction) and answers the new row,
    /// or `nil` when another write got there first (`version` no longer matches).
    static func update(_ current: StreamRecord, with changes: StreamChanges, at now: Double, on db: any SQLDatabase) async throws -> StreamRecord? {
        var next = apply(changes, to: current, at: now)
        next.version = current.version + 1
        next.updatedAt = now
        let row = try await db.raw("""
            UPDATE streams SET link = \(bind: next.link), posted_link = \(bind: next.postedLink), source = \(bind: next.source), platform = \(bind: next.platform.rawValue),
                status = \(bind: next.status.rawValue), title = \(bind: next.title), city = \(bind: next.city), state = \(bind: next.state),
                notes = \(bind: next.notes), is_pinned = \(bind: next.isPinned), is_archived = \(bind: next.isArchived),
                posted_by = \(bind: next.postedBy), kind = \(bind: next.kind.rawValue), orientation = \(bind: next.orientation?.rawValue),
                streamer_id = \(bind: next.streamerID), started_at = \(bind: next.startedAt), ended_at = \(bind: next.endedAt),
                last_checked_at = \(bind: next.lastCheckedAt), last_live_at = \(bind: next.lastLiveAt),
                updated_at = \(bind: now), version = \(bind: next.version)
            WHERE id = \(bind: current.id) AND version = \(bind: current.version)
            RETURNING \(unsafeRaw: StreamRecord.columns)
            """).first()
        return try row.map(StreamRecord.init(row:))
    }

    /// `current` with `changes` applied, including what follows from them: a stream going live gets
    /// `started_at` and `last_live_at`, an archived one `ended_at`, an unarchived one loses `ended_at`.
    static func apply(_ changes: StreamChanges, to current: StreamRecord, at now: Double) -> StreamRecord {
        var next = current
        if let link = changes.link {
            next.link = link.url
            next.postedLink = link.posted == link.url ? nil : link.posted
            if changes.platform == nil { next.platform = link.platform }
        }
        if let platform = changes.platform { next.platform = platform }
        next.source = changes.source.apply(to: current.source)
        next.title = changes.title.apply(to: current.title)
        next.city = changes.city.apply(to: current.city)
        next.state = changes.state.apply(to: current.state)
        next.notes = changes.notes.apply(to: current.notes)
        next.postedBy = changes.postedBy.apply(to: current.postedBy)
        if let kind = changes.kind { next.kind = kind }
        next.orientation = changes.orientation.apply(to: current.orientation)
        if let pinned = changes.isPinned { next.isPinned = pinned }
        next.streamerID = changes.streamerID.apply(to: current.streamerID)
        next.lastCheckedAt = changes.lastCheckedAt.apply(to: current.lastCheckedAt)
        next.lastLiveAt = changes.lastLiveAt.apply(to: current.lastLiveAt)
        if let status = changes.status {
            next.status = status
            if status == .live && current.status != .live {
                next.startedAt = now
                if changes.lastLiveAt.isAbsent { next.lastLiveAt = now }
            }
            if status == .live && changes.lastLiveAt.isAbsent { next.lastLiveAt = now }
        }
        if let archived = changes.isArchived, archived != current.isArchived {
            next.isArchived = archived
            next.endedAt = archived ? now : nil
        }
        return next
    }

    static func delete(_ id: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM streams WHERE id = \(bind: id)").run()
    }
}
