import Foundation
import HubCore

/// What the list cache needs to know about one stream to tell whether a list query can include it: the
/// fields the filters look at.
struct StreamFacts: Sendable, Equatable {
    var status: StreamStatus
    var platform: Platform
    var isPinned: Bool
    var isArchived: Bool
    var city: String?
    var state: String?
    var link: String
    var postedLink: String?
    var source: String?
    var title: String?
    var notes: String?
    var streamerID: Int64?
    /// The values lists sort by that no filter looks at.
    var createdAt: Double
    var updatedAt: Double
    var lastLiveAt: Double?
    var lastCheckedAt: Double?

    init(_ stream: StreamRecord) {
        status = stream.status
        platform = stream.platform
        isPinned = stream.isPinned
        isArchived = stream.isArchived
        city = stream.city
        state = stream.state
        link = stream.link
        postedLink = stream.postedLink
        source = stream.source
        title = stream.title
        notes = stream.notes
        streamerID = stream.streamerID
        createdAt = stream.createdAt
        updatedAt = stream.updatedAt
        lastLiveAt = stream.lastLiveAt
        lastCheckedAt = stream.lastCheckedAt
    }

    /// The facts of a stream as another instance announced it (`{"stream":{…}}` of a change event).
    init?(json stream: [String: Any]) {
        guard let status = (stream["status"] as? String).flatMap(StreamStatus.init(rawValue:)),
              let platform = (stream["platform"] as? String).flatMap(Platform.init(rawValue:)),
              let shown = stream["link"] as? String, let canonical = try? StreamLink(shown)
        else { return nil }
        self.status = status
        self.platform = platform
        isPinned = stream["is_pinned"] as? Bool ?? false
        isArchived = stream["is_archived"] as? Bool ?? false
        city = stream["city"] as? String
        state = stream["state"] as? String
        link = canonical.url
        postedLink = shown == canonical.url ? nil : shown
        source = stream["source"] as? String
        title = stream["title"] as? String
        notes = stream["notes"] as? String
        streamerID = (stream["streamer_id"] as? NSNumber)?.int64Value
        func time(_ key: String) -> Double? { (stream[key] as? String).flatMap(Timestamp.parse) }
        guard let created = time("created_at"), let updated = time("updated_at") else { return nil }
        createdAt = created
        updatedAt = updated
        lastLiveAt = time("last_live_at")
        lastCheckedAt = time("last_checked_at")
    }
}

extension StreamQuery {
    /// Whether a stream is among a query's results: sure yes, sure no, or unsure (text outside ASCII, where
    /// SQLite's `lower()` and Swift's differ).
    enum Inclusion { case yes, no, maybe }

    /// Whether a stream with these facts is among this query's results — exactly the SQL filter of
    /// `StreamStore.page` for ASCII text; outside ASCII it may be.
    func inclusion(_ stream: StreamFacts) -> Inclusion {
        var unsure = false
        func fold(_ answer: Bool?) -> Bool {
            guard let answer else { unsure = true; return true }
            return answer
        }
        guard mayInclude(stream, fold: fold) else { return .no }
        return unsure ? .maybe : .yes
    }

    /// Whether a stream with these facts may be among this query's results (true when unsure).
    func mayInclude(_ stream: StreamFacts) -> Bool { inclusion(stream) != .no }

    /// Whether two versions of a stream sort alike under this query.
    func sortsAlike(_ a: StreamFacts, _ b: StreamFacts) -> Bool {
        sort.allSatisfy { column in
            switch column.column {
            case "id", "created_at": return a.createdAt == b.createdAt
            case "updated_at": return a.updatedAt == b.updatedAt
            case "source": return a.source == b.source
            case "status": return a.status == b.status
            case "city": return a.city == b.city
            case "state": return a.state == b.state
            case "platform": return a.platform == b.platform
            case "last_live_at": return a.lastLiveAt == b.lastLiveAt
            case "last_checked_at": return a.lastCheckedAt == b.lastCheckedAt
            case "is_pinned": return a.isPinned == b.isPinned
            case "title": return a.title == b.title
            default: return false
            }
        }
    }

    private func mayInclude(_ stream: StreamFacts, fold: (Bool?) -> Bool) -> Bool {
        switch archived {
        case .hidden: if stream.isArchived { return false }
        case .only: if !stream.isArchived { return false }
        case .any: break
        }
        if !statuses.isEmpty, !statuses.contains(stream.status) { return false }
        if notStatuses.contains(stream.status) { return false }
        if !platforms.isEmpty, !platforms.contains(stream.platform) { return false }
        if let isPinned, stream.isPinned != isPinned { return false }
        if let city, !fold(Self.equalFolded(stream.city, city)) { return false }
        if let state, !fold(Self.equalFolded(stream.state, state)) { return false }
        if let link, stream.link != link { return false }
        if let streamerID, stream.streamerID != streamerID { return false }
        if let text {
            var fields = [stream.source, stream.title, stream.city, stream.notes]
            if textIncludesLink { fields += [stream.link, stream.postedLink] }
            if searchLink == stream.link { return true }
            let answers = fields.map { Self.containsFolded($0, text) }
            if answers.contains(true) { return true }
            if !fold(answers.contains(nil) ? nil : false) { return false }
        }
        return true
    }

    /// Whether the order of this query's results depends on check times, which checks change without a new version.
    var sortsByCheckTimes: Bool { sort.contains { $0.column == "last_checked_at" || $0.column == "last_live_at" } }

    static func isASCII(_ text: String) -> Bool { text.utf8.allSatisfy { $0 < 0x80 } }

    /// `lower(column) = lower(value)`, as the database decides it; `nil` when unsure (outside ASCII).
    static func equalFolded(_ value: String?, _ wanted: String) -> Bool? {
        guard let value else { return false }
        guard isASCII(value), isASCII(wanted) else { return nil }
        return value.lowercased() == wanted.lowercased()
    }

    /// `lower(column) LIKE '%' || lower(value) || '%'`, as the database decides it; `nil` when unsure.
    static func containsFolded(_ value: String?, _ wanted: String) -> Bool? {
        guard let value else { return false }
        guard isASCII(value), isASCII(wanted) else { return nil }
        return value.lowercased().contains(wanted.lowercased())
    }
}

/// The recent stream changes, numbered by the registry's list version, so a cached list built at an older
/// version can be kept when none of the changes since could alter it — a write to one stream no longer
/// costs every cached answer. A change is:
/// - one stream before and after (either may be absent: created, deleted; `before` unknown when another
///   instance changed a stream this one knew nothing of),
/// - check times of some streams (no new version; lists showing those streams or sorted by them go),
/// - or anything else (a streamer deleted or merged): every list goes.
struct ListChanges: Sendable {
    enum Change: Sendable {
        case stream(id: Int64, before: StreamFacts?, beforeKnown: Bool, after: StreamFacts?)
        case checked(Set<Int64>)
        case everything
    }

    static let capacity = 4_096
    /// The change that made each version, oldest first: `changes[i]` made version `first + i`.
    private(set) var changes: [Change] = []
    private(set) var first: UInt64 = 2
    /// The facts of every stream seen since start (loaded once, then kept by every change), so a change
    /// announced by another instance knows what the stream was before.
    var facts: [Int64: StreamFacts] = [:]
    var factsLoaded = false

    /// Records a change that made version `version` (always the next one).
    mutating func append(_ change: Change, version: UInt64) {
        if changes.isEmpty { first = version }
        changes.append(change)
        if changes.count > Self.capacity {
            changes.removeFirst(changes.count - Self.capacity / 2)
            first = version - UInt64(changes.count) + 1
        }
        if case .stream(let id, _, _, let after) = change {
            facts[id] = after
        }
    }

    /// Whether a list built at `built` for `query`, showing `ids`, is still the right answer at `current`.
    func unaffected(_ query: StreamQuery, ids: Set<Int64>, from built: UInt64, to current: UInt64) -> Bool {
        guard built < current else { return true }
        // Every version in (built, current] must still be in the ring.
        guard built + 1 >= first, current < first + UInt64(changes.count) else { return false }
        for version in (built + 1)...current {
            switch changes[Int(version - first)] {
            case .everything:
                return false
            case .checked(let checked):
                if query.sortsByCheckTimes || !checked.isDisjoint(with: ids) { return false }
            case .stream(let id, let before, let beforeKnown, let after):
                if ids.contains(id) || !beforeKnown { return false }
                let was = before.map(query.inclusion) ?? .no, now = after.map(query.inclusion) ?? .no
                if was == .no && now == .no { continue }
                // In the results before and after, in the same place, and not on this page: the page is the same.
                if was == .yes, now == .yes, let before, let after, query.sortsAlike(before, after) { continue }
                return false
            }
        }
        return true
    }
}
