import Foundation
import HTTPTypes
import HubCore
import HubStore
import Logging
import NIOCore
import SQLKit
import Synchronization

/// Registry event types, as they appear on the bus, on `/events` and on the cable.
public enum RegistryEventType {
    public static let created = "stream_created"
    public static let updated = "stream_updated"
    public static let deleted = "stream_deleted"
    public static let locked = "stream_locked"
    public static let unlocked = "stream_unlocked"
    /// A stream's live/offline status changed (status checkers).
    public static let status = "stream_status"
    /// A stream link was posted in chat (discovery).
    public static let discovered = "stream_discovered"
    /// Stream changes (replayed on reconnect).
    public static let changes: Set<String> = [created, updated, deleted]
    /// Everything the cable carries.
    public static let cable: Set<String> = [created, updated, deleted, locked, unlocked, status, discovered]
    /// Instance-to-instance: a logged-out token.
    static let tokenRevoked = "internal.token_revoked"
    /// Instance-to-instance: an account or API key lost its access or changed role (`subject`, e.g. `user:5`);
    /// every instance drops it from its caches and closes its WebSockets.
    static let accountChanged = "internal.account_changed"
}

/// The streams side of the registry: every write runs in one transaction with its audit entry and its
/// change-log row, then publishes the full stream on the bus. Reads of the list are answered from a cache
/// that every write (here or, through the bus, on another instance) invalidates.
public final class RegistryService: Sendable {
    let database: HubDatabase
    let bus: EventBus
    let locks: StreamLocks
    let logger: Logger
    /// Bumped by every stream write seen here; cached list answers carry the version they were built at
    /// (or last found still right at).
    private let version = Atomic<UInt64>(1)
    /// What each version changed, to keep the cached lists a change cannot alter.
    private let recentChanges = Mutex(ListChanges())
    private let listCache = Mutex<[String: CachedList]>([:])
    /// How many list answers were built from the database (tests and metrics see the cache work).
    let listBuilds = Atomic<Int>(0)
    /// Each stream's rendered JSON by id, for the version it was rendered at: a list page reads only ids
    /// and versions from the database and takes the rest from here.
    private let rendered = Mutex<[Int64: RenderedStream]>([:])
    /// How long a cached list is served without a change event before it is rebuilt in the background:
    /// for ever on one instance; on several, 30 s bounds the staleness should a backplane notification be lost.
    let listTTL: Double

    struct RenderedStream {
        let version: Int64
        let json: String
        let wallJSON: String
    }

    /// Lists being built right now: concurrent misses of one key share one query.
    private let building = Mutex<[String: (version: UInt64, task: Task<CachedList, any Error>)]>([:])

    struct CachedList {
        var version: UInt64
        let builtAt: Double
        let body: String
        let etag: String
        /// The streams the answer shows (a change to one of them always rebuilds it).
        let ids: Set<Int64>
    }

    /// Who writes, for the audit log and `posted_by`.
    struct Writer: Sendable {
        let principal: Principal
        let requestID: String?

        func entry(_ action: String, entity: String, id: Int64?) -> AuditLog.Entry {
            AuditLog.Entry(actor: principal.actor, action: action, entity: entity, entityID: id.map(String.init), requestID: requestID)
        }
    }

    init(database: HubDatabase, bus: EventBus, logger: Logger) {
        self.database = database
        self.bus = bus
        self.locks = StreamLocks(origin: bus.origin)
        self.logger = logger
        self.listTTL = database.kind == .postgres ? 30 : .infinity
    }

    // MARK: Reads

    /// One stream (404 when there is none).
    public func stream(_ id: Int64) async throws -> StreamRecord {
        guard let stream = try await StreamStore.get(id, on: database.sql) else { throw Self.notFound(id) }
        return stream
    }

    static func notFound(_ id: Int64) -> HubError { HubError.notFound("no stream with id \(id)") }

    /// The list answer for `query` in the given format, with its ETag, from the cache when still current.
    func list(_ query: StreamQuery, wall: Bool) async throws -> (body: String, etag: String) {
        let key = (wall ? "wall|" : "api|") + query.cacheKey
        let current = version.load(ordering: .acquiring)
        let now = Timestamp.now()
        if var cached = listCache.withLock({ $0[key] }) {
            if cached.version != current {
                // Changes since it was built: keep it if none of them can alter this answer.
                let built = cached.version
                guard recentChanges.withLock({ $0.unaffected(query, ids: cached.ids, from: built, to: current) }) else {
                    let rebuilt = try await refresh(key, query, wall: wall, version: current, now: now).value
                    return (rebuilt.body, rebuilt.etag)
                }
                cached.version = current
                let revalidated = cached
                listCache.withLock { cache in if let entry = cache[key], entry.version == built { cache[key] = revalidated } }
            }
            // Past its age limit but with no change seen: answer it, and refresh it in the background.
            if now - cached.builtAt >= listTTL { _ = refresh(key, query, wall: wall, version: current, now: now) }
            return (cached.body, cached.etag)
        }
        let built = try await refresh(key, query, wall: wall, version: current, now: now).value
        return (built.body, built.etag)
    }

    /// Builds (or joins the build of) one list and caches it.
    private func refresh(_ key: String, _ query: StreamQuery, wall: Bool, version current: UInt64, now: Double) -> Task<CachedList, any Error> {
        building.withLock { building -> Task<CachedList, any Error> in
            if let running = building[key], running.version == current { return running.task }
            let task = Task {
                defer { self.building.withLock { building in if building[key]?.version == current { building.removeValue(forKey: key) } } }
                let built = try await self.build(query, wall: wall, version: current, now: now)
                self.listCache.withLock { cache in
                    if cache.count > 2_000 { cache.removeAll() }
                    if (cache[key]?.version ?? 0) <= built.version { cache[key] = built }
                }
                return built
            }
            building[key] = (current, task)
            return task
        }
    }

    private func build(_ query: StreamQuery, wall: Bool, version: UInt64, now: Double) async throws -> CachedList {
        listBuilds.add(1, ordering: .relaxed)
        var page = query
        if wall {
            page.page = 1
            page.perPage = 10_000
        }
        let (keys, total) = try await StreamStore.page(page, on: database.reader)
        var streams = rendered.withLock { cache in keys.map { key in cache[key.id].flatMap { $0.version == key.version ? $0 : nil } } }
        let missing = zip(keys, streams).compactMap { $1 == nil ? $0.id : nil }
        if !missing.isEmpty {
            var fresh: [Int64: RenderedStream] = [:]
            for stream in try await StreamStore.load(missing, on: database.reader) {
                fresh[stream.id] = RenderedStream(version: stream.version, json: stream.json, wallJSON: stream.wallJSON)
            }
            rendered.withLock { cache in
                if cache.count > 200_000 { cache.removeAll() }
                cache.merge(fresh) { _, new in new }
            }
            streams = zip(keys, streams).map { key, cached in cached ?? fresh[key.id] }
        }
        let present = streams.compactMap { $0 }
        let body: String
        if wall {
            body = "[" + present.map(\.wallJSON).joined(separator: ",") + "]"
        } else {
            let pages = total == 0 ? 0 : (total + query.perPage - 1) / query.perPage
            body = "{\"streams\":[" + present.map(\.json).joined(separator: ",") + "],\"meta\":"
                + JSONText.object([("current_page", .int(query.page)), ("total_pages", .int(pages)), ("total_count", .int(total)), ("per_page", .int(query.perPage))])
                + "}"
        }
        return CachedList(version: version, builtAt: now, body: body, etag: "\"l" + String(fnv1a(body), radix: 36) + "\"", ids: Set(keys.map(\.id)))
    }

    /// Records a change to the streams, local or remote: a new list version, and what the change was, so
    /// cached lists it cannot alter stay. Without a description every cached list goes.
    func changed(_ change: ListChanges.Change = .everything) {
        recentChanges.withLock { changes in
            let next = version.add(1, ordering: .releasing).newValue
            changes.append(change, version: next)
        }
    }

    /// A change to one stream made here, with what it was before (`nil`: it did not exist).
    func changed(_ id: Int64, before: StreamRecord?, after: StreamRecord?) {
        changed(.stream(id: id, before: before.map(StreamFacts.init), beforeKnown: true, after: after.map(StreamFacts.init)))
    }

    /// A change another instance announced (`{"stream":{…}}` of its event): what the stream was before is
    /// what this instance last saw of it.
    func changedElsewhere(_ type: String, payload: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: payload) as? [String: Any],
              let stream = object["stream"] as? [String: Any], let id = (stream["id"] as? NSNumber)?.int64Value
        else { return changed() }
        let after = type == RegistryEventType.deleted ? nil : StreamFacts(json: stream)
        if type != RegistryEventType.deleted && after == nil { return changed() }
        recentChanges.withLock { changes in
            let known = type == RegistryEventType.created || changes.factsLoaded || changes.facts[id] != nil
            let before = type == RegistryEventType.created ? nil : changes.facts[id]
            let next = version.add(1, ordering: .releasing).newValue
            changes.append(.stream(id: id, before: before, beforeKnown: known, after: after), version: next)
        }
    }

    /// Loads what every stream is now, so changes other instances announce know what came before.
    func loadFacts() async throws {
        let streams = try await allStreams(includeArchived: true, limit: 1_000_000)
        recentChanges.withLock { changes in
            // Changes seen while loading are newer than the snapshot: they win.
            for stream in streams where changes.facts[stream.id] == nil { changes.facts[stream.id] = StreamFacts(stream) }
            changes.factsLoaded = true
        }
    }

    // MARK: Writes

    /// Creates a stream. A link already present and active is a 409 naming it; an archived one is brought
    /// back (un-archived, with the new fields applied) and answered with `created == false`.
    func create(_ input: StreamInput, by writer: Writer) async throws -> (stream: StreamRecord, created: Bool) {
        let changes = try StreamChanges(input, requireLink: true)
        guard let link = changes.link else { throw HubError.validation("link is required") }
        let now = Timestamp.now()
        let postedBy = writer.principal.name.isEmpty ? nil : writer.principal.name
        if database.kind == .postgres, changes.streamerID.apply(to: nil) == nil {
            // One statement: the stream, its audit entry and its change. A taken link falls through to the
            // transaction below, which brings an archived stream back or answers 409.
            let record = try StreamStore.newRecord(changes, postedByDefault: postedBy, at: now)
            if let (stream, eventID) = try await StreamStore.insertAudited(record, actor: writer.principal.actor, requestID: writer.requestID,
                                                                             changeType: RegistryEventType.created, at: now, on: database.sql) {
                publish(RegistryEventType.created, stream: stream, before: nil, eventID: eventID)
                return (stream, true)
            }
        }
        do {
            let (before, stream, created, eventID) = try await database.write { db -> (StreamRecord?, StreamRecord, Bool, Int64) in
                if let streamer = changes.streamerID.apply(to: nil) { try await Self.requireStreamer(streamer, on: db) }
                if let stream = try await StreamStore.insert(changes, postedByDefault: postedBy, at: now, on: db) {
                    try await AuditLog.record(writer.entry("create", entity: "stream", id: stream.id), before: nil, after: stream.auditFields, on: db, at: now)
                    let eventID = try await ChangeLog.append(type: RegistryEventType.created, body: stream.json, on: db, at: now)
                    return (nil, stream, true, eventID)
                }
                // The link is taken: by an archived stream (brought back) or an active one (a conflict).
                if let existing = try await StreamStore.find(link: link.url, on: db) {
                    guard existing.isArchived else { throw Self.duplicate(existing) }
                    var revive = changes
                    revive.isArchived = false
                    guard let stream = try await StreamStore.update(existing, with: revive, at: now, on: db) else { throw Self.duplicate(existing) }
                    try await AuditLog.record(writer.entry("unarchive", entity: "stream", id: stream.id), before: existing.auditFields, after: stream.auditFields, on: db, at: now)
                    let eventID = try await ChangeLog.append(type: RegistryEventType.updated, body: stream.json, on: db, at: now)
                    return (existing, stream, false, eventID)
                }
                throw HubError.internalError()
            }
            publish(created ? RegistryEventType.created : RegistryEventType.updated, stream: stream, before: before, eventID: eventID)
            return (stream, created)
        } catch let error as HubError {
            throw error
        } catch {
            // Two posts of the same link at once: the unique index stopped the second.
            if let existing = try? await StreamStore.find(link: link.url, on: database.sql), !existing.isArchived {
                throw Self.duplicate(existing)
            }
            throw error
        }
    }

    /// What ``discover(_:by:requestID:)`` did with a link.
    public enum DiscoveryOutcome: String, Sendable {
        /// A new stream.
        case created
        /// An archived stream with this link, brought back.
        case unarchived
        /// An active stream with this link; nothing was written.
        case existing
    }

    /// Creates the stream for a discovered link, brings an archived one back, or answers the active one:
    /// never a duplicate, also when the same link is posted many times at once.
    public func discover(_ input: StreamInput, by principal: Principal, requestID: String?) async throws -> (stream: StreamRecord, outcome: DiscoveryOutcome) {
        do {
            let (stream, created) = try await create(input, by: Writer(principal: principal, requestID: requestID))
            return (stream, created ? .created : .unarchived)
        } catch let error as HubError where error.code == "duplicate_link" {
            let changes = try StreamChanges(input, requireLink: true)
            guard let link = changes.link, let existing = try await StreamStore.find(link: link.url, on: database.sql) else { throw error }
            return (existing, .existing)
        }
    }

    /// Applies a change from a service (a status checker, an import), audited as `action`. Stream locks
    /// do not hold services up. Answers the stream after the change (unchanged when nothing differed).
    @discardableResult
    public func apply(_ input: StreamInput, to id: Int64, action: String, by principal: Principal, requestID: String? = nil) async throws -> StreamRecord {
        try await update(id, changes: try StreamChanges(input, requireLink: false), ifMatch: nil, action: action, by: Writer(principal: principal, requestID: requestID))
    }

    /// The stream with this link (after normalisation), archived or not.
    public func stream(link: String) async throws -> StreamRecord? {
        guard let link = try? StreamLink(link) else { return nil }
        return try await StreamStore.find(link: link.url, on: database.sql)
    }

    /// Every stream (archived ones too when asked), oldest first, for exports and checkers.
    public func allStreams(includeArchived: Bool, limit: Int = 100_000) async throws -> [StreamRecord] {
        let filter: SQLQueryString = includeArchived ? "" : " WHERE is_archived = \(bind: false)"
        return try await database.reader.raw("SELECT \(unsafeRaw: StreamRecord.columns) FROM streams" + filter + " ORDER BY id LIMIT \(bind: limit)")
            .all().map(StreamRecord.init(row:))
    }

    /// The streams with these ids, in no particular order.
    public func streams(ids: [Int64]) async throws -> [StreamRecord] {
        try await StreamStore.load(ids, on: database.reader)
    }

    /// Checks a body as a create (`current == nil`) or as a change to `current` would, without writing, and
    /// answers what would change: field, value before, value after (JSON text; before is `null` on create).
    public func preview(_ input: StreamInput, on current: StreamRecord?) throws -> [(field: String, before: String, after: String)] {
        let changes = try StreamChanges(input, requireLink: current == nil)
        let now = Timestamp.now()
        let base = current ?? StreamRecord(newWithLink: changes.link?.url ?? "", platform: changes.link?.platform ?? .other, at: now)
        let before = current?.auditFields.mapValues(JSONText.render) ?? [:]
        let after = StreamStore.apply(changes, to: base, at: now).auditFields.mapValues(JSONText.render)
        // Times the registry keeps by itself (a status of live stamps last_live_at) are not what a body changes.
        let derived: Set<String> = input.lastLiveAt.isAbsent ? ["last_live_at", "started_at", "ended_at"] : []
        return after.keys.sorted().compactMap { key in
            if derived.contains(key) { return nil }
            let old = before[key] ?? "null"
            guard let new = after[key], new != old, current != nil || new != "null" else { return nil }
            return (key, old, new)
        }
    }

    /// Records that streams were checked and their status did not change: `last_checked_at` (and
    /// `last_live_at` for live ones) in one transaction, without audit entries, events or a new version
    /// (a status change goes through ``apply(_:to:action:by:requestID:)`` instead). Reads here see the
    /// new times at once; other instances when the stream next changes or their list cache expires.
    public func recordChecked(_ checks: [(id: Int64, at: Double, live: Bool)]) async throws {
        guard !checks.isEmpty else { return }
        try await database.transaction { db in
            for check in checks {
                if check.live {
                    try await db.raw("UPDATE streams SET last_checked_at = \(bind: check.at), last_live_at = \(bind: check.at) WHERE id = \(bind: check.id)").run()
                } else {
                    try await db.raw("UPDATE streams SET last_checked_at = \(bind: check.at) WHERE id = \(bind: check.id)").run()
                }
            }
        }
        // The version (and so the ETag) stays: check times are bookkeeping, and an editor's If-Match should
        // not fail because a checker passed by. The rendered copies are dropped so reads show the new times.
        rendered.withLock { cache in for check in checks { cache.removeValue(forKey: check.id) } }
        changed(.checked(Set(checks.map(\.id))))
    }

    /// Publishes an event about a stream on the bus (and so on the cable and /events): `{"stream": …}` plus `fields`.
    public func announce(_ type: String, stream: StreamRecord, fields: [(String, JSONText.Value)] = []) {
        bus.publish(type: type, payload: ByteBuffer(string: JSONText.object([("stream", .raw(stream.json))] + fields)), visibility: .viewers)
    }

    static func duplicate(_ existing: StreamRecord) -> HubError {
        HubError(.conflict, code: "duplicate_link", message: "stream \(existing.id) already has this link (\(existing.link))",
                 headers: [.location: "/api/v1/streams/\(existing.id)"])
    }

    static func requireStreamer(_ id: Int64, on db: any SQLDatabase) async throws {
        guard try await db.raw("SELECT id FROM streamers WHERE id = \(bind: id)").first() != nil else {
            throw HubError.validation("streamer_id \(id) does not exist")
        }
    }

    /// Applies a change. With `ifMatch` (an ETag), a stream changed since is a 412; a stream locked by
    /// another operator is a 423 for users (services such as status checkers are not held up by locks).
    @discardableResult
    func update(_ id: Int64, changes: StreamChanges, ifMatch: String?, action: String = "update", by writer: Writer) async throws -> StreamRecord {
        if writer.principal.kind == .user, let lock = locks.lock(on: id), lock.holder != writer.principal.actor {
            throw HubError(.locked, code: "locked", message: "stream \(id) is being edited by \(lock.holder) until \(Timestamp.iso8601(lock.expiresAt))")
        }
        let now = Timestamp.now()
        let kind = database.kind
        let (before, stream, eventID) = try await database.write { db -> (StreamRecord, StreamRecord, Int64?) in
            guard let current = try await StreamStore.get(id, on: db, forUpdate: true, kind: kind) else { throw Self.notFound(id) }
            if let ifMatch, !Self.matches(ifMatch, current.etag) {
                throw HubError(.preconditionFailed, code: "stale_write", message: "stream \(id) changed since you read it (now \(current.etag)); fetch it again",
                               headers: [.eTag: current.etag])
            }
            if let link = changes.link, link.url != current.link, let other = try await StreamStore.find(link: link.url, on: db) {
                throw Self.duplicate(other)
            }
            if let streamer = changes.streamerID.apply(to: nil) { try await Self.requireStreamer(streamer, on: db) }
            let next = StreamStore.apply(changes, to: current, at: now)
            guard next.auditFields.mapValues(JSONText.render) != current.auditFields.mapValues(JSONText.render) else {
                return (current, current, nil)  // nothing changes: no write, no event
            }
            guard let stream = try await StreamStore.update(current, with: changes, at: now, on: db) else {
                throw HubError(.preconditionFailed, code: "stale_write", message: "stream \(id) changed while this write ran; fetch it again")
            }
            try await AuditLog.record(writer.entry(action, entity: "stream", id: id), before: current.auditFields, after: stream.auditFields, on: db, at: now)
            return (current, stream, try await ChangeLog.append(type: RegistryEventType.updated, body: stream.json, on: db, at: now))
        }
        if let eventID { publish(RegistryEventType.updated, stream: stream, before: before, eventID: eventID) }
        return stream
    }

    /// `If-Match` holds one or more ETags, or `*`.
    static func matches(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").contains { tag in
            let tag = tag.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == etag || tag == "W/" + etag
        }
    }

    func delete(_ id: Int64, by writer: Writer) async throws {
        let now = Timestamp.now()
        let kind = database.kind
        let (stream, eventID) = try await database.transaction { db -> (StreamRecord, Int64) in
            guard let current = try await StreamStore.get(id, on: db, forUpdate: true, kind: kind) else { throw Self.notFound(id) }
            try await StreamStore.delete(id, on: db)
            try await AuditLog.record(writer.entry("delete", entity: "stream", id: id), before: current.auditFields, after: nil, on: db, at: now)
            return (current, try await ChangeLog.append(type: RegistryEventType.deleted, body: current.json, on: db, at: now))
        }
        publish(RegistryEventType.deleted, stream: stream, before: stream, eventID: eventID)
        if let lock = locks.drop(id) { publishUnlocked(lock.streamID, by: lock.holder, reason: "deleted") }
    }

    func publish(_ type: String, stream: StreamRecord, before: StreamRecord?, eventID: Int64) {
        changed(stream.id, before: before, after: type == RegistryEventType.deleted ? nil : stream)
        bus.publish(type: type, payload: ByteBuffer(string: ChangeLog.payload(id: eventID, body: stream.json)), visibility: .viewers)
    }

    // MARK: Locks

    func lock(_ id: Int64, by principal: Principal) async throws -> StreamLocks.Lock {
        _ = try await stream(id)
        switch locks.acquire(id, holder: principal.actor) {
        case .heldBy(let lock):
            throw HubError(.locked, code: "locked", message: "stream \(id) is being edited by \(lock.holder) until \(Timestamp.iso8601(lock.expiresAt))")
        case .granted(let lock):
            bus.publish(type: RegistryEventType.locked, payload: ByteBuffer(string: lock.lockedPayload), visibility: .viewers)
            return lock
        }
    }

    func unlock(_ id: Int64, by principal: Principal) throws {
        guard locks.release(id, holder: principal.actor) else {
            if let lock = locks.lock(on: id) {
                throw HubError(.locked, code: "locked", message: "stream \(id) is locked by \(lock.holder), not by you")
            }
            return
        }
        publishUnlocked(id, by: principal.actor, reason: "released")
    }

    func publishUnlocked(_ id: Int64, by holder: String, reason: String) {
        bus.publish(type: RegistryEventType.unlocked, payload: ByteBuffer(string: JSONText.object([
            ("stream_id", .int(Int(id))), ("locked_by", .string(holder)), ("reason", .string(reason)),
        ])), visibility: .viewers)
    }

    /// Tells every instance (this one too) that `subject` (`user:<id>` or `api_key:<id>`) lost its access
    /// or changed role: caches drop it and its WebSockets close within a second.
    public func announceAccountChanged(_ subject: String) {
        bus.publish(type: RegistryEventType.accountChanged, payload: ByteBuffer(string: JSONText.object([("subject", .string(subject))])),
                    visibility: .nobody)
    }
}

/// 64-bit FNV-1a, for ETags of generated bodies.
func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    return hash
}
