import HubCore
import NIOCore
import Logging
import Metrics
import Registry

/// What the chat connectors share: the ingest they feed, their line in /health, their counters, and the
/// principal they write as.
struct ChatFeed: Sendable {
    /// The message source, e.g. `twitch`.
    let source: String
    /// The connector's name in /health, e.g. `twitch_chat`.
    let name: String
    let discovery: DiscoveryService
    let health: ServiceHealth
    let logger: Logger
    let principal: Principal
    private let received: Counter
    private let reconnects: Counter

    init(source: String, name: String, discovery: DiscoveryService, health: ServiceHealth, logger: Logger, metrics: any MetricsFactory) {
        self.source = source
        self.name = name
        self.discovery = discovery
        self.health = health
        var logger = logger
        logger[metadataKey: "connector"] = .string(name)
        self.logger = logger
        let actor = name.replacingOccurrences(of: "_", with: "-")
        self.principal = Principal(kind: .service, id: actor, role: "editor", name: actor)
        self.received = Counter(label: "streamhub_chat_messages_total", dimensions: [("source", source)], factory: metrics)
        self.reconnects = Counter(label: "streamhub_chat_reconnects_total", dimensions: [("source", source)], factory: metrics)
    }

    /// A moderation action the chat service reported: `message_deleted` (with the message id), `user_timed_out`
    /// (with seconds), `user_banned`, `chat_cleared` — a `chat_moderation` event.
    func moderated(channel: String?, action: String, user: String? = nil, messageID: String? = nil, seconds: Int? = nil) {
        discovery.bus.publish(type: DiscoveryService.moderationEvent, payload: ByteBuffer(string: JSONText.object([
            ("source", .string(source)), ("channel", channel.map(JSONText.Value.string) ?? .null), ("action", .string(action)),
            ("user", user.map(JSONText.Value.string) ?? .null), ("message_id", messageID.map(JSONText.Value.string) ?? .null),
            ("seconds", seconds.map(JSONText.Value.int) ?? .null), ("at", .string(Timestamp.iso8601(Timestamp.now()))),
        ])), visibility: .viewers)
    }

    func report(_ status: ServiceHealth.Status, detail: String? = nil) {
        health.report(name, status, detail: detail)
    }

    /// Counts a reconnect and shows it in /health.
    func reconnecting() {
        report(.degraded, detail: "reconnecting")
        reconnects.increment()
    }

    /// Hands one chat message to discovery. A message discovery refuses (too long, say) or cannot store
    /// right now is logged and dropped: it never ends the chat connection. Every message is also a
    /// `chat_message` event (what the Stream Manager's `chat` channel shows).
    func deliver(channel: String?, author: String?, text: String, postedAt: Double?, id: String? = nil) async {
        received.increment()
        discovery.publishChat(ChatMessage(source: source, channel: channel, author: author, text: text, postedAt: postedAt), id: id)
        do {
            _ = try await discovery.ingest(ChatMessage(source: source, channel: channel, author: author, text: text, postedAt: postedAt, id: id), by: principal)
        } catch let error as HubError where error.status.code < 500 {
            logger.debug("chat message not ingested", metadata: ["error": "\(error.message)"])
        } catch {
            logger.warning("chat message not ingested", metadata: ["error": "\(error)"])
        }
    }
}
