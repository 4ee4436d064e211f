import Foundation
import HubCore
import HummingbirdWSClient
import Logging
import Metrics
import NIOCore
import NIOWebSocket
import Registry
import ServiceLifecycle
import Synchronization

/// Reads messages in the configured Discord channels through the Discord Gateway (v10, JSON encoding)
/// and feeds them to discovery.
///
/// It follows Discord's documented lifecycle: HELLO (op 10) gives the heartbeat interval; the first
/// heartbeat (op 1) goes after `interval × jitter`, then every interval, carrying the last sequence
/// number; a heartbeat not acknowledged (op 11) before the next one means a zombied connection, which is
/// closed and resumed. IDENTIFY (op 2) sends the bot token and intents; READY gives the session id and
/// `resume_gateway_url`, which a reconnect uses to RESUME (op 6). RECONNECT (op 7) and resumable
/// INVALID_SESSION (op 9, `d: true`) resume; `d: false` identifies afresh after 1–5 s. Close codes that
/// can never succeed (4004 authentication failed, 4010–4014) stop the connector and mark it failed in
/// /health; every other close reconnects with backoff.
public struct DiscordGatewayConnector: Service {
    public struct Settings: Sendable {
        public var gatewayURL: String
        public var token: String
        /// Channel ids to read; empty means every channel the bot can see.
        public var channels: Set<String>
        /// GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT by default.
        public var intents: Int

        public init(gatewayURL: String, token: String, channels: Set<String>, intents: Int = 1 | 512 | 32768) {
            self.gatewayURL = gatewayURL
            self.token = token
            self.channels = channels
            self.intents = intents
        }
    }

    let settings: Settings
    let feed: ChatFeed
    var logger: Logger { feed.logger }

    init(settings: Settings, discovery: DiscoveryService, health: ServiceHealth, logger: Logger, metrics: any MetricsFactory) {
        self.settings = settings
        self.feed = ChatFeed(source: "discord", name: "discord_gateway", discovery: discovery, health: health, logger: logger, metrics: metrics)
    }

    /// What survives a connection: the session to resume.
    struct Session: Sendable {
        var id: String
        var resumeURL: String
        var sequence: Int?
    }

    /// How a connection ended, and so what the next one does.
    enum Ending: Sendable {
        case resume, identify, fatal(String)
    }

    /// Close codes after which reconnecting cannot help.
    static let fatalCloseCodes: [UInt16: String] = [
        4004: "authentication failed: check the bot token", 4010: "invalid shard", 4011: "sharding required",
        4012: "invalid API version", 4013: "invalid intents", 4014: "disallowed intents: enable MESSAGE CONTENT for the bot",
    ]
    /// Close codes after which the session cannot be resumed.
    static let freshSessionCloseCodes: Set<UInt16> = [4007, 4009]

    public func run() async throws {
        var session: Session?
        var backoff = Backoff()
        feed.report(.starting)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let state = ConnectionState(session: session)
            var ending: Ending = .resume
            do {
                let url = Self.gatewayURL(session?.resumeURL ?? settings.gatewayURL)
                let close = try await cancelWhenGracefulShutdown {
                    try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 20), logger: logger) { inbound, outbound, _ in
                        try await connection(inbound: inbound, outbound: outbound, state: state)
                    }
                }
                if Task.isShuttingDownGracefully { break }
                ending = state.ending.withLock { $0 } ?? .resume
                if case .unknown(let code) = close?.closeCode {
                    if let why = Self.fatalCloseCodes[code] { ending = .fatal(why) }
                    if Self.freshSessionCloseCodes.contains(code) { ending = .identify }
                }
                logger.notice("Discord gateway connection closed", metadata: ["close_code": "\(close.map { "\($0.closeCode)" } ?? "none")"])
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                ending = state.ending.withLock { $0 } ?? .resume
                logger.warning("Discord gateway connection failed", metadata: ["error": "\(error)"])
            }
            session = state.session.withLock { $0 }
            switch ending {
            case .fatal(let why):
                logger.error("Discord gateway connector stopped", metadata: ["reason": "\(why)"])
                feed.report(.failed, detail: why)
                // Stay (idle) until shutdown: a service that returns would stop the whole application.
                try? await gracefulShutdown()
                return
            case .identify:
                session = nil
            case .resume:
                break
            }
            if state.ready.withLock({ $0 }) { backoff.reset() }
            feed.reconnecting()
            let wait: Duration = ending.isIdentifyAfterInvalidSession(state) ? .milliseconds(Int.random(in: 1000...5000)) : backoff.next()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
        }
        feed.report(.stopped)
    }

    /// The gateway URL with the version and encoding Discord wants.
    static func gatewayURL(_ base: String) -> String {
        guard var components = URLComponents(string: base) else { return base }
        var items = components.queryItems ?? []
        if !items.contains(where: { $0.name == "v" }) { items.append(URLQueryItem(name: "v", value: "10")) }
        if !items.contains(where: { $0.name == "encoding" }) { items.append(URLQueryItem(name: "encoding", value: "json")) }
        components.queryItems = items
        if components.path.isEmpty { components.path = "/" }
        return components.string ?? base
    }

    final class ConnectionState: Sendable {
        let session: Mutex<Session?>
        let ending = Mutex<Ending?>(nil)
        let acknowledged = Mutex(true)
        let ready = Mutex(false)
        let invalidSession = Mutex(false)
        let selfID = Mutex<String?>(nil)

        init(session: Session?) {
            self.session = Mutex(session)
        }
    }

    /// One gateway connection, from HELLO until it closes.
    func connection(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, state: ConnectionState) async throws {
        var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
        guard case .text(let helloText) = try await messages.next(), let hello = GatewayPayload(helloText), hello.op == 10,
              let interval = (hello.data?["heartbeat_interval"] as? NSNumber)?.doubleValue, interval > 0
        else {
            state.ending.withLock { $0 = .resume }
            try await outbound.close(.unknown(4000), reason: "expected HELLO")
            return
        }
        let send: @Sendable (Int, Any?) async throws -> Void = { op, data in
            let object: [String: Any] = ["op": op, "d": data ?? NSNull()]
            let text = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            try await outbound.write(.text(text))
        }
        let heartbeat: @Sendable () async throws -> Void = {
            let sequence = state.session.withLock { $0?.sequence }
            try await send(1, sequence.map { $0 as Any })
        }
        if let session = state.session.withLock({ $0 }) {
            try await send(6, ["token": settings.token, "session_id": session.id, "seq": session.sequence as Any? ?? NSNull()])
        } else {
            try await send(2, [
                "token": settings.token, "intents": settings.intents,
                "properties": ["os": "linux", "browser": "streamhub", "device": "streamhub"],
            ])
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int(interval * Double.random(in: 0...1))))
                while true {
                    guard state.acknowledged.withLock({ acknowledged in defer { acknowledged = false }; return acknowledged }) else {
                        logger.notice("Discord heartbeat not acknowledged; resuming on a new connection")
                        state.ending.withLock { $0 = .resume }
                        try await outbound.close(.unknown(4000), reason: "zombied connection")
                        return
                    }
                    try await heartbeat()
                    try await Task.sleep(for: .milliseconds(Int(interval)))
                }
            }
            reading: do {
                while let message = try await messages.next() {
                    guard case .text(let text) = message, let payload = GatewayPayload(text) else { continue }
                    if let sequence = payload.sequence { state.session.withLock { $0?.sequence = sequence } }
                    switch payload.op {
                    case 0: try await dispatch(payload, state: state)
                    case 1: try await heartbeat()
                    case 7:
                        state.ending.withLock { $0 = .resume }
                        try await outbound.close(.unknown(4000), reason: "reconnect requested")
                        break reading
                    case 9:
                        let resumable = payload.rawData as? Bool ?? false
                        state.invalidSession.withLock { $0 = true }
                        state.ending.withLock { $0 = resumable ? .resume : .identify }
                        if !resumable { state.session.withLock { $0 = nil } }
                        try await outbound.close(.unknown(4000), reason: "invalid session")
                        break reading
                    case 11: state.acknowledged.withLock { $0 = true }
                    default: continue
                    }
                }
            }
            group.cancelAll()
        }
    }

    func dispatch(_ payload: GatewayPayload, state: ConnectionState) async throws {
        switch payload.type {
        case "READY":
            guard let data = payload.data, let id = data["session_id"] as? String else { return }
            let resume = data["resume_gateway_url"] as? String ?? settings.gatewayURL
            state.session.withLock { $0 = Session(id: id, resumeURL: resume, sequence: payload.sequence) }
            state.selfID.withLock { $0 = (data["user"] as? [String: Any])?["id"] as? String }
            state.ready.withLock { $0 = true }
            feed.report(.running, detail: "session ready")
            logger.info("connected to the Discord gateway")
        case "RESUMED":
            state.ready.withLock { $0 = true }
            feed.report(.running, detail: "session resumed")
            logger.info("resumed the Discord gateway session")
        case "MESSAGE_CREATE":
            guard let data = payload.data, let channel = data["channel_id"] as? String, let content = data["content"] as? String else { return }
            guard settings.channels.isEmpty || settings.channels.contains(channel) else { return }
            let author = data["author"] as? [String: Any]
            if let authorID = author?["id"] as? String, authorID == state.selfID.withLock({ $0 }) { return }
            let name = (author?["global_name"] as? String) ?? (author?["username"] as? String)
            let postedAt = (data["timestamp"] as? String).flatMap(Timestamp.parse)
            await feed.deliver(channel: channel, author: name, text: content, postedAt: postedAt, id: data["id"] as? String)
        case "MESSAGE_DELETE":
            guard let data = payload.data, let channel = data["channel_id"] as? String else { return }
            guard settings.channels.isEmpty || settings.channels.contains(channel) else { return }
            feed.moderated(channel: channel, action: "message_deleted", messageID: data["id"] as? String)
        default:
            break
        }
    }
}

extension DiscordGatewayConnector.Ending {
    func isIdentifyAfterInvalidSession(_ state: DiscordGatewayConnector.ConnectionState) -> Bool {
        if case .identify = self { return state.invalidSession.withLock { $0 } }
        return false
    }
}

/// One gateway payload: `{"op", "d", "s", "t"}`.
struct GatewayPayload {
    let op: Int
    let data: [String: Any]?
    let rawData: Any?
    let sequence: Int?
    let type: String?

    init?(_ text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let op = (object["op"] as? NSNumber)?.intValue
        else { return nil }
        self.op = op
        self.rawData = object["d"]
        self.data = object["d"] as? [String: Any]
        self.sequence = (object["s"] as? NSNumber)?.intValue
        self.type = object["t"] as? String
    }
}
