import Foundation
import HubCore

/// A field of a PATCH-style body: left out, explicitly cleared (`null` or `''`), or set.
public enum Patch<Value: Sendable & Equatable>: Sendable, Equatable {
    case absent
    case clear
    case set(Value)

    var isAbsent: Bool { self == .absent }

    func apply(to current: Value?) -> Value? {
        switch self {
        case .absent: return current
        case .clear: return nil
        case .set(let value): return value
        }
    }
}

/// A coding key for any JSON key.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// The body of `POST /streams` and `PATCH /streams/{id}`, read as leniently as the StreamSource clients
/// write it: `url` for `link`, `postedBy` for `posted_by`, notes as a string or an array of strings, `''`
/// or `null` to clear, enum values in any case, unknown keys ignored, optionally wrapped in `{"stream":…}`.
/// Types are still checked: a number where a string belongs is an error naming the field.
public struct StreamInput: Decodable, Sendable {
    public var link: Patch<String> = .absent
    public var source: Patch<String> = .absent
    public var title: Patch<String> = .absent
    public var city: Patch<String> = .absent
    public var state: Patch<String> = .absent
    public var notes: Patch<String> = .absent
    public var postedBy: Patch<String> = .absent
    public var platform: Patch<String> = .absent
    public var status: Patch<String> = .absent
    public var kind: Patch<String> = .absent
    public var orientation: Patch<String> = .absent
    public var isPinned: Bool?
    public var isArchived: Bool?
    public var streamerID: Patch<Int64> = .absent
    public var lastCheckedAt: Patch<String> = .absent
    public var lastLiveAt: Patch<String> = .absent

    public init() {}

    public init(from decoder: any Decoder) throws {
        var container = try decoder.container(keyedBy: AnyKey.self)
        if container.allKeys.count == 1, let wrapped = container.allKeys.first, wrapped.stringValue == "stream",
           (try? container.nestedContainer(keyedBy: AnyKey.self, forKey: wrapped)) != nil {
            container = try container.nestedContainer(keyedBy: AnyKey.self, forKey: wrapped)
        }
        func string(_ names: String...) throws -> Patch<String> {
            for name in names {
                let key = AnyKey(name)
                guard container.contains(key) else { continue }
                if try container.decodeNil(forKey: key) { return .clear }
                let value = try container.decode(String.self, forKey: key)
                return value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? .clear : .set(value.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return .absent
        }
        func flag(_ names: String...) throws -> Bool? {
            for name in names {
                let key = AnyKey(name)
                guard container.contains(key), !(try container.decodeNil(forKey: key)) else { continue }
                return try container.decode(Bool.self, forKey: key)
            }
            return nil
        }
        func timestamp(_ names: String...) throws -> Patch<String> {
            for name in names {
                let key = AnyKey(name)
                guard container.contains(key) else { continue }
                if try container.decodeNil(forKey: key) { return .clear }
                if let seconds = try? container.decode(Double.self, forKey: key) { return .set(String(seconds)) }
                let value = try container.decode(String.self, forKey: key)
                return value.isEmpty ? .clear : .set(value)
            }
            return .absent
        }
        link = try string("link", "url")
        source = try string("source")
        title = try string("title")
        city = try string("city")
        state = try string("state", "region")
        postedBy = try string("posted_by", "postedBy")
        platform = try string("platform")
        status = try string("status")
        kind = try string("kind")
        orientation = try string("orientation")
        lastCheckedAt = try timestamp("last_checked_at", "lastCheckedAt")
        lastLiveAt = try timestamp("last_live_at", "lastLiveAt")
        isPinned = try flag("is_pinned", "isPinned")
        isArchived = try flag("is_archived", "isArchived")
        let notesKey = AnyKey("notes")
        if container.contains(notesKey) {
            if try container.decodeNil(forKey: notesKey) {
                notes = .clear
            } else if let lines = try? container.decode([String].self, forKey: notesKey) {
                let joined = lines.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }.joined(separator: "\n")
                notes = joined.isEmpty ? .clear : .set(joined)
            } else {
                notes = try string("notes")
            }
        }
        for name in ["streamer_id", "streamerId"] {
            let key = AnyKey(name)
            guard container.contains(key) else { continue }
            streamerID = try container.decodeNil(forKey: key) ? .clear : .set(try container.decode(Int64.self, forKey: key))
            break
        }

    }
}

/// Length limits of stream fields, in characters.
enum StreamLimits {
    static let source = 200
    static let title = 300
    static let city = 100
    static let state = 100
    static let notes = 4000
    static let postedBy = 200
}

/// A validated stream write: every value checked and converted, ready for the store.
struct StreamChanges: Sendable {
    var link: StreamLink?
    var source: Patch<String> = .absent
    var title: Patch<String> = .absent
    var city: Patch<String> = .absent
    var state: Patch<String> = .absent
    var notes: Patch<String> = .absent
    var postedBy: Patch<String> = .absent
    /// An explicit platform; `nil` derives it from the link.
    var platform: Platform?
    var status: StreamStatus?
    var kind: StreamKind?
    var orientation: Patch<Orientation> = .absent
    var isPinned: Bool?
    var isArchived: Bool?
    var streamerID: Patch<Int64> = .absent
    var lastCheckedAt: Patch<Double> = .absent
    var lastLiveAt: Patch<Double> = .absent

    init(_ input: StreamInput, requireLink: Bool) throws {
        switch input.link {
        case .set(let raw):
            do { link = try StreamLink(raw) } catch {
                throw HubError.validation(error.description)
            }
        case .clear, .absent:
            if requireLink || input.link == .clear { throw HubError.validation("link is required: an http(s) URL of the stream") }
        }
        func limited(_ patch: Patch<String>, _ name: String, _ limit: Int) throws -> Patch<String> {
            if case .set(let value) = patch, value.count > limit {
                throw HubError.validation("\(name) must be at most \(limit) characters")
            }
            if case .set(let value) = patch, value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
                throw HubError.validation("\(name) must not contain control characters")
            }
            return patch
        }
        source = try limited(input.source, "source", StreamLimits.source)
        title = try limited(input.title, "title", StreamLimits.title)
        city = try limited(input.city, "city", StreamLimits.city)
        state = try limited(input.state, "state", StreamLimits.state)
        notes = try limited(input.notes, "notes", StreamLimits.notes)
        postedBy = try limited(input.postedBy, "posted_by", StreamLimits.postedBy)
        if case .set(let label) = input.platform {
            platform = Platform(rawValue: label.lowercased())  // an unknown label means "derive it from the link"
        }
        if case .set(let label) = input.status {
            guard let value = StreamStatus(rawValue: label.lowercased()) else {
                throw HubError.validation("status must be \(StreamStatus.choices)")
            }
            status = value
        }
        if case .set(let label) = input.kind {
            guard let value = StreamKind(rawValue: label.lowercased()) else { throw HubError.validation("kind must be \(StreamKind.choices)") }
            kind = value
        }
        switch input.orientation {
        case .absent: break
        case .clear: orientation = .clear
        case .set(let label):
            switch label.lowercased() {
            case "vertical", "v", "portrait": orientation = .set(.vertical)
            case "horizontal", "h", "landscape": orientation = .set(.horizontal)
            default: throw HubError.validation("orientation must be vertical or horizontal")
            }
        }
        isPinned = input.isPinned
        isArchived = input.isArchived
        if case .set(let id) = input.streamerID, id <= 0 { throw HubError.validation("streamer_id must be a positive integer") }
        streamerID = input.streamerID
        func time(_ patch: Patch<String>, _ name: String) throws -> Patch<Double> {
            switch patch {
            case .absent: return .absent
            case .clear: return .clear
            case .set(let text):
                guard let seconds = Timestamp.parse(text), seconds > 0, seconds < 32_503_680_000 else {
                    throw HubError.validation("\(name) must be an ISO 8601 time such as 2026-11-26T01:02:03Z")
                }
                return .set(seconds)
            }
        }
        lastCheckedAt = try time(input.lastCheckedAt, "last_checked_at")
        lastLiveAt = try time(input.lastLiveAt, "last_live_at")
    }
}
