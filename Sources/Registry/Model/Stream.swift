import HubCore
import SQLKit

/// One stream in the registry.
public struct StreamRecord: Sendable, Equatable {
    public var id: Int64
    /// The link's canonical form (unique): what de-duplication, `link=` and discovery compare.
    public var link: String
    /// The link as it was posted, when that differs from the canonical form (rows from before it was kept: nil).
    public var postedLink: String?
    public var source: String?
    public var platform: Platform
    public var status: StreamStatus
    public var title: String?
    public var city: String?
    public var state: String?
    public var notes: String?
    public var isPinned: Bool
    public var isArchived: Bool
    public var postedBy: String?
    public var kind: StreamKind
    public var orientation: Orientation?
    public var streamerID: Int64?
    public var startedAt: Double?
    public var endedAt: Double?
    public var lastCheckedAt: Double?
    public var lastLiveAt: Double?
    public var createdAt: Double
    public var updatedAt: Double
    /// Bumped by every write; the ETag is built from it.
    public var version: Int64

    /// The link the API shows: as posted (the Streamwall link monitor finds its streams by what it sent).
    public var displayLink: String { postedLink ?? link }

    /// The strong ETag of this version of the stream.
    public var etag: String { "\"s\(id)-v\(version)\"" }

    static let columns = "id, link, posted_link, source, platform, status, title, city, state, notes, is_pinned, is_archived, posted_by, kind, orientation, streamer_id, started_at, ended_at, last_checked_at, last_live_at, created_at, updated_at, version"

    /// A stream not yet stored: what a create would start from.
    init(newWithLink link: String, platform: Platform, at now: Double) {
        id = 0
        self.link = link
        self.platform = platform
        status = .unknown
        isPinned = false
        isArchived = false
        kind = .video
        createdAt = now
        updatedAt = now
        version = 0
    }

    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int64.self)
        link = try row.decode(column: "link", as: String.self)
        postedLink = try row.decode(column: "posted_link", as: String?.self)
        source = try row.decode(column: "source", as: String?.self)
        platform = Platform(rawValue: try row.decode(column: "platform", as: String.self)) ?? .other
        status = StreamStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .unknown
        title = try row.decode(column: "title", as: String?.self)
        city = try row.decode(column: "city", as: String?.self)
        state = try row.decode(column: "state", as: String?.self)
        notes = try row.decode(column: "notes", as: String?.self)
        isPinned = try row.decode(column: "is_pinned", as: Bool.self)
        isArchived = try row.decode(column: "is_archived", as: Bool.self)
        postedBy = try row.decode(column: "posted_by", as: String?.self)
        kind = StreamKind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .video
        orientation = try row.decode(column: "orientation", as: String?.self).flatMap(Orientation.init(rawValue:))
        streamerID = try row.decode(column: "streamer_id", as: Int64?.self)
        startedAt = try row.decode(column: "started_at", as: Double?.self)
        endedAt = try row.decode(column: "ended_at", as: Double?.self)
        lastCheckedAt = try row.decode(column: "last_checked_at", as: Double?.self)
        lastLiveAt = try row.decode(column: "last_live_at", as: Double?.self)
        createdAt = try row.decode(column: "created_at", as: Double.self)
        updatedAt = try row.decode(column: "updated_at", as: Double.self)
        version = try row.decode(column: "version", as: Int64.self)
    }

    /// The stream as the API writes it: every field present, `null` when unset, times in ISO 8601.
    public var json: String {
        func string(_ value: String?) -> JSONText.Value { value.map(JSONText.Value.string) ?? .null }
        func time(_ value: Double?) -> JSONText.Value { Timestamp.jsonValue(value) }
        return JSONText.object([
            ("id", .int(Int(id))), ("link", .string(displayLink)), ("source", string(source)), ("platform", .string(platform.rawValue)),
            ("status", .string(status.rawValue)), ("title", string(title)), ("city", string(city)), ("state", string(state)),
            ("notes", string(notes)), ("posted_by", string(postedBy)), ("is_pinned", .bool(isPinned)), ("is_archived", .bool(isArchived)),
            ("kind", .string(kind.rawValue)), ("orientation", string(orientation?.rawValue)),
            ("streamer_id", streamerID.map { .int(Int($0)) } ?? .null),
            ("started_at", time(startedAt)), ("ended_at", time(endedAt)),
            ("last_checked_at", time(lastCheckedAt)), ("last_live_at", time(lastLiveAt)),
            ("created_at", time(createdAt)), ("updated_at", time(updatedAt)), ("version", .int(Int(version))),
        ])
    }

    /// The stream as the Streamwall wall app reads it (`format=streamwall`).
    var wallJSON: String {
        func string(_ value: String?) -> JSONText.Value { value.map(JSONText.Value.string) ?? .null }
        return JSONText.object([
            ("id", .int(Int(id))), ("link", .string(displayLink)), ("kind", .string(kind.rawValue)), ("source", string(source)),
            ("label", string(title ?? source)), ("status", .string(status.wallLabel)), ("city", string(city)), ("state", string(state)),
            ("notes", string(notes)), ("orientation", string(orientation?.wallLabel)), ("addedDate", .string(Timestamp.iso8601(createdAt))),
        ])
    }

    /// The fields an audit entry compares, by their API names.
    var auditFields: [String: JSONText.Value] {
        func string(_ value: String?) -> JSONText.Value { value.map(JSONText.Value.string) ?? .null }
        func time(_ value: Double?) -> JSONText.Value { Timestamp.jsonValue(value) }
        return [
            "link": .string(displayLink), "source": string(source), "platform": .string(platform.rawValue), "status": .string(status.rawValue),
            "title": string(title), "city": string(city), "state": string(state), "notes": string(notes), "posted_by": string(postedBy),
            "is_pinned": .bool(isPinned), "is_archived": .bool(isArchived), "kind": .string(kind.rawValue),
            "orientation": string(orientation?.rawValue), "streamer_id": streamerID.map { .int(Int($0)) } ?? .null,
            "started_at": time(startedAt), "ended_at": time(endedAt), "last_checked_at": time(lastCheckedAt), "last_live_at": time(lastLiveAt),
        ]
    }
}
