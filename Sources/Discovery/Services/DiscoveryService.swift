import Foundation
import HubCore
import HubStore
import Logging
import Metrics
import NIOCore
import Registry
import SQLKit

/// A chat message to look for stream links in.
public struct ChatMessage: Sendable, Equatable {
    /// Where it was posted: `discord`, `twitch`, `manual`, or another short name.
    public var source: String
    public var channel: String?
    public var author: String?
    public var text: String
    /// Seconds since 1970; `nil` means now.
    public var postedAt: Double?
    /// The chat service's id of the message (Twitch's `id` tag, Discord's message id): a message with an id
    /// is ingested once however often it is seen.
    public var id: String?

    public init(source: String, channel: String?, author: String?, text: String, postedAt: Double? = nil, id: String? = nil) {
        self.source = source
        self.channel = channel
        self.author = author
        self.text = text
        self.postedAt = postedAt
        self.id = id
    }

    static let maxText = 8000

    /// Checks the fields a client sent.
    func validate() throws {
        guard (1...32).contains(source.count), source.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw HubError.validation("source must be 1-32 lowercase letters, digits, '_' or '-' (discord, twitch, manual, ...)")
        }
        if let channel, channel.count > 200 { throw HubError.validation("channel must be at most 200 characters") }
        if let author, author.count > 200 { throw HubError.validation("author must be at most 200 characters") }
        if let id, id.isEmpty || id.count > 200 || id.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f }) {
            throw HubError.validation("message_id must be 1-200 characters without spaces or control characters")
        }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw HubError.validation("text is required") }
        guard text.count <= Self.maxText else { throw HubError.validation("text must be at most \(Self.maxText) characters") }
        if let postedAt, !(postedAt > 0 && postedAt < 32_503_680_000) {
            throw HubError.validation("posted_at must be a time between 1970 and 3000")
        }
    }
}

/// What ingest did with one link of a message.
public struct DiscoveryResult: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case created, unarchived, existing, ignored
    }

    public let link: String
    public let platform: Platform
    public let outcome: Outcome
    public let streamID: Int64?
    /// Why the link was ignored.
    public let reason: String?

    var json: String {
        JSONText.object([
            ("link", .string(link)), ("platform", .string(platform.rawValue)), ("outcome", .string(outcome.rawValue)),
            ("stream_id", streamID.map { .int(Int($0)) } ?? .null), ("reason", reason.map(JSONText.Value.string) ?? .null),
        ])
    }
}

/// Turns chat messages into registry streams: finds the links, skips what the ignore lists name, reads
/// a location from the text, and creates each stream (or brings it back, or notes that it was seen
/// again). Publishes `stream_discovered` for every link taken.
public struct DiscoveryService: Sendable {
    let registry: RegistryService
    let database: HubDatabase
    let detector: LinkDetector
    let locations: LocationParser
    let ignoreLists: IgnoreLists
    let logger: Logger
    let messages: Counter
    let duplicates: Counter
    let outcomes: [DiscoveryResult.Outcome: Counter]

    init(registry: RegistryService, database: HubDatabase, detector: LinkDetector, locations: LocationParser, ignoreLists: IgnoreLists,
         logger: Logger, metrics: any MetricsFactory) {
        self.registry = registry
        self.database = database
        self.detector = detector
        self.locations = locations
        self.ignoreLists = ignoreLists
        self.logger = logger
        self.messages = Counter(label: "streamhub_discovery_messages_total", factory: metrics)
        self.duplicates = Counter(label: "streamhub_discovery_duplicate_messages_total", factory: metrics)
        var outcomes: [DiscoveryResult.Outcome: Counter] = [:]
        for outcome in [DiscoveryResult.Outcome.created, .unarchived, .existing, .ignored] {
            outcomes[outcome] = Counter(label: "streamhub_discovery_links_total", dimensions: [("outcome", outcome.rawValue)], factory: metrics)
        }
        self.outcomes = outcomes
    }

    /// Every chat message a connector sees, for signed-in viewers: `{source, channel, author, text, posted_at, id}`.
    public static let chatEvent = "chat_message"
    /// Moderation the chat service reported: `{source, channel, action, user, message_id, seconds, at}`.
    public static let moderationEvent = "chat_moderation"

    var bus: EventBus { ignoreLists.bus }

    func publishChat(_ message: ChatMessage, id: String?) {
        bus.publish(type: Self.chatEvent, payload: ByteBuffer(string: JSONText.object([
            ("source", .string(message.source)), ("channel", message.channel.map(JSONText.Value.string) ?? .null),
            ("author", message.author.map(JSONText.Value.string) ?? .null), ("text", .string(String(message.text.prefix(ChatMessage.maxText)))),
            ("posted_at", .string(Timestamp.iso8601(message.postedAt ?? Timestamp.now()))), ("id", id.map(JSONText.Value.string) ?? .null),
        ])), visibility: .viewers)
    }

    /// Ingests one message; `principal` is who sent it (an API key, an editor, or a chat connector).
    public func ingest(_ message: ChatMessage, by principal: Principal, requestID: String? = nil) async throws -> [DiscoveryResult] {
        try message.validate()
        messages.increment()
        let links = detector.links(in: message.text)
        guard !links.isEmpty else { return [] }
        if let reason = ignoreLists.ignoresMessage(source: message.source, channel: message.channel, author: message.author) {
            return links.map { record(DiscoveryResult(link: $0.url, platform: $0.platform, outcome: .ignored, streamID: nil, reason: reason)) }
        }
        guard try await firstSighting(of: message) else {
            duplicates.increment()
            return []
        }
        let location = locations.location(in: message.text)
        var results: [DiscoveryResult] = []
        for detected in links {
            if let reason = ignoreLists.ignoresLink(detected.link) {
                results.append(record(DiscoveryResult(link: detected.url, platform: detected.platform, outcome: .ignored, streamID: nil, reason: reason)))
                continue
            }
            var input = StreamInput()
            input.link = .set(detected.url)
            if let author = message.author, !author.isEmpty { input.postedBy = .set(String(author.prefix(200))) }
            if let source = Self.sourceName(detected) { input.source = .set(source) }
            if let city = location?.city { input.city = .set(city) }
            if let state = location?.state { input.state = .set(state) }
            let (stream, outcome) = try await registry.discover(input, by: principal, requestID: requestID)
            let seenAt = message.postedAt ?? Timestamp.now()
            try await database.sql.raw("""
                INSERT INTO stream_sightings (stream_id, source, channel, author, seen_at)
                VALUES (\(bind: stream.id), \(bind: message.source), \(bind: message.channel), \(bind: message.author), \(bind: seenAt))
                """).run()
            let result = DiscoveryResult(link: stream.link, platform: stream.platform, outcome: DiscoveryResult.Outcome(rawValue: outcome.rawValue) ?? .existing,
                                         streamID: stream.id, reason: nil)
            registry.announce(RegistryEventType.discovered, stream: stream, fields: [
                ("outcome", .string(result.outcome.rawValue)), ("source", .string(message.source)),
                ("channel", message.channel.map(JSONText.Value.string) ?? .null), ("author", message.author.map(JSONText.Value.string) ?? .null),
                ("seen_at", .string(Timestamp.iso8601(seenAt))),
            ])
            results.append(record(result))
        }
        if results.contains(where: { $0.outcome == .created }) {
            logger.info("discovered streams", metadata: ["source": .string(message.source), "links": .string(results.map(\.link).joined(separator: " "))])
        }
        return results
    }

    /// Whether this is the first time a message with this id is ingested (messages without an id always are).
    /// One insert that does nothing on a repeat, so two instances racing on one message agree too.
    func firstSighting(of message: ChatMessage) async throws -> Bool {
        guard let id = message.id, !id.isEmpty, id.count <= 200 else { return true }
        let now = Timestamp.now()
        let rows = try await database.sql.raw("""
            INSERT INTO chat_messages_seen (source, channel, message_id, seen_at) VALUES (\(bind: message.source), \(bind: message.channel ?? ""), \(bind: id), \(bind: now))
            ON CONFLICT DO NOTHING RETURNING message_id
            """).all()
        if rows.isEmpty { return false }
        // Now and then, forget ids older than a day (a replay comes within minutes).
        if Int.random(in: 0..<500) == 0 {
            try? await database.sql.raw("DELETE FROM chat_messages_seen WHERE seen_at < \(bind: now - 86_400)").run()
        }
        return true
    }

    private func record(_ result: DiscoveryResult) -> DiscoveryResult {
        outcomes[result.outcome]?.increment()
        return result
    }

    /// A readable source name from the link: the channel or handle it names.
    static func sourceName(_ detected: DetectedLink) -> String? {
        guard let components = URLComponents(string: detected.url) else { return nil }
        let segments = components.path.split(separator: "/").map(String.init)
        switch (detected.platform, detected.kind) {
        case (.twitch, .channel), (.kick, .channel): return segments.first
        case (.tiktok, .live), (.instagram, .live), (.youtube, .live), (.facebook, .live):
            guard let first = segments.first, !["channel", "c", "user"].contains(first) else { return segments.count > 1 ? segments[1] : nil }
            return first.hasPrefix("@") ? String(first.dropFirst()) : first
        default: return nil
        }
    }
}
