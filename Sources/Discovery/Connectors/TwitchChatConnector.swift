import Foundation
import HubCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import Registry
import ServiceLifecycle
import Synchronization

/// Reads Twitch chat (IRC) in the configured channels and feeds every message to discovery.
///
/// Anonymous (a `justinfan` nick) unless an OAuth token is configured. Asks for IRCv3 tags (display
/// names), answers PING, reconnects with backoff when the connection drops or Twitch says RECONNECT, and
/// treats a connection silent for longer than ``idleTimeout`` (Twitch pings every ~5 minutes) as dead.
/// Reports its state in /health as `twitch_chat`.
public struct TwitchChatConnector: Service {
    public struct Settings: Sendable {
        /// `ircs://host:port` (TLS) or `irc://host:port`.
        public var url: String
        public var channels: [String]
        public var nick: String?
        public var oauthToken: String?
        public var idleTimeout: Duration = .seconds(360)

        public init(url: String, channels: [String], nick: String? = nil, oauthToken: String? = nil) {
            self.url = url
            self.channels = channels
            self.nick = nick
            self.oauthToken = oauthToken
        }
    }

    let settings: Settings
    let feed: ChatFeed
    var logger: Logger { feed.logger }

    init(settings: Settings, discovery: DiscoveryService, health: ServiceHealth, logger: Logger, metrics: any MetricsFactory) {
        self.settings = settings
        self.feed = ChatFeed(source: "twitch", name: "twitch_chat", discovery: discovery, health: health, logger: logger, metrics: metrics)
    }

    struct Endpoint {
        let host: String
        let port: Int
        let tls: Bool
    }

    static func endpoint(_ url: String) throws -> Endpoint {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), ["irc", "ircs"].contains(scheme),
              let host = components.host, !host.isEmpty
        else { throw HubError.validation("the Twitch IRC URL must look like ircs://irc.chat.twitch.tv:6697 or irc://host:6667") }
        return Endpoint(host: host, port: components.port ?? (scheme == "ircs" ? 6697 : 6667), tls: scheme == "ircs")
    }

    public func run() async throws {
        let endpoint = try Self.endpoint(settings.url)
        var backoff = Backoff()
        feed.report(.starting, detail: settings.channels.map { "#" + $0 }.joined(separator: " "))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await cancelWhenGracefulShutdown { try await session(endpoint) }
                if Task.isShuttingDownGracefully { break }
                logger.notice("Twitch chat connection ended; reconnecting")
            } catch ConnectorError.authenticationFailed {
                logger.error("Twitch chat login failed; the connector stops until restarted with a valid token")
                // Stay (idle) until shutdown: a service that returns would stop the whole application.
                try? await gracefulShutdown()
                return
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                logger.warning("Twitch chat connection failed", metadata: ["error": "\(error)"])
            }
            feed.reconnecting()
            if ContinuousClock.now - started > .seconds(60) { backoff.reset() }
            let wait = backoff.next()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
        }
        feed.report(.stopped)
    }

    /// One connection: register, join, and read until it ends.
    func session(_ endpoint: Endpoint) async throws {
        let tlsContext = endpoint.tls ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tlsContext, serverHostname: endpoint.host))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let activity = Activity()
        let raw = channel.channel
        let idleTimeout = settings.idleTimeout
        try await channel.executeThenClose { inbound, outbound in
            let send: @Sendable (String) async throws -> Void = { line in
                try await outbound.write(ByteBuffer(string: line + "\r\n"))
            }
            let nick = settings.nick ?? "justinfan\(Int.random(in: 10_000...99_999))"
            try await send("CAP REQ :twitch.tv/tags twitch.tv/commands")
            if let token = settings.oauthToken { try await send("PASS " + (token.hasPrefix("oauth:") ? token : "oauth:" + token)) }
            try await send("NICK \(nick)")
            try await send("USER \(nick) 0 * :\(nick)")
            // Standard IRC servers hold registration until capability negotiation ends; Twitch accepts it too.
            try await send("CAP END")
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Watchdog: ping when quiet; close the connection when silent for too long.
                group.addTask {
                    var pinged = false
                    while true {
                        try await Task.sleep(for: .seconds(5))
                        let idle = ContinuousClock.now - activity.last.withLock { $0 }
                        if idle > idleTimeout {
                            activity.silent.store(true, ordering: .relaxed)
                            raw.close(promise: nil)
                            return
                        }
                        if idle > idleTimeout / 2, !pinged { try await send("PING :streamhub"); pinged = true }
                        if idle < idleTimeout / 2 { pinged = false }
                    }
                }
                var pending: [UInt8] = []
                reading: for try await buffer in inbound {
                    activity.last.withLock { $0 = .now }
                    pending += buffer.readableBytesView
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        var end = newline
                        if end > 0, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                        let line = String(decoding: pending[..<end], as: UTF8.self)
                        pending.removeSubrange(...newline)
                        guard let message = IRCMessage(line: line[...]) else { continue }
                        if try await handle(message, send: send) == .reconnect { break reading }
                    }
                    guard pending.count <= IRCMessage.maxLineBytes else { throw ConnectorError.lineTooLong }
                }
                group.cancelAll()
            }
        }
        if activity.silent.load(ordering: .relaxed) { throw ConnectorError.silent }
    }

    final class Activity: Sendable {
        let last = Mutex(ContinuousClock.now)
        let silent = Atomic(false)
    }

    enum Next { case keepReading, reconnect }

    func handle(_ message: IRCMessage, send: (String) async throws -> Void) async throws -> Next {
        switch message.command {
        case "PING":
            try await send("PONG :" + (message.parameters.last ?? ""))
        case "001":
            // Registered: join the channels (in batches, as servers limit the line length).
            for batch in stride(from: 0, to: settings.channels.count, by: 20) {
                let names = settings.channels[batch..<min(batch + 20, settings.channels.count)].map { "#" + $0 }
                try await send("JOIN " + names.joined(separator: ","))
            }
            feed.report(.running, detail: "joined " + settings.channels.map { "#" + $0 }.joined(separator: " "))
            logger.info("connected to Twitch chat", metadata: ["channels": "\(settings.channels.count)"])
        case "RECONNECT":
            logger.notice("Twitch asked to reconnect")
            return .reconnect
        case "NOTICE" where message.parameters.last?.lowercased().contains("login authentication failed") == true:
            feed.report(.failed, detail: "login authentication failed: check the OAuth token")
            throw ConnectorError.authenticationFailed
        case "PRIVMSG":
            guard message.parameters.count >= 2 else { break }
            let channel = message.parameters[0].hasPrefix("#") ? String(message.parameters[0].dropFirst()) : message.parameters[0]
            let author = message.tags["display-name"].flatMap { $0.isEmpty ? nil : $0 } ?? message.nick
            let postedAt = message.tags["tmi-sent-ts"].flatMap(Double.init).map { $0 / 1000 }
            var text = message.parameters[1]
            // CTCP ACTION (/me): \u{1}ACTION text\u{1}
            if text.hasPrefix("\u{1}ACTION ") { text = String(text.dropFirst(8)).trimmingCharacters(in: CharacterSet(charactersIn: "\u{1}")) }
            await feed.deliver(channel: channel, author: author, text: text, postedAt: postedAt, id: message.tags["id"])
        case "CLEARMSG":
            // A moderator deleted one message.
            let channel = message.parameters.first.map { $0.hasPrefix("#") ? String($0.dropFirst()) : $0 }
            feed.moderated(channel: channel, action: "message_deleted", user: message.tags["login"], messageID: message.tags["target-msg-id"])
        case "CLEARCHAT":
            // A timeout or ban of one user (the trailing parameter), or the whole chat cleared.
            let channel = message.parameters.first.map { $0.hasPrefix("#") ? String($0.dropFirst()) : $0 }
            if message.parameters.count >= 2 {
                let seconds = message.tags["ban-duration"].flatMap(Int.init)
                feed.moderated(channel: channel, action: seconds == nil ? "user_banned" : "user_timed_out", user: message.parameters[1], seconds: seconds)
            } else {
                feed.moderated(channel: channel, action: "chat_cleared")
            }
        default:
            break
        }
        return .keepReading
    }
}

enum ConnectorError: Error, CustomStringConvertible {
    case silent, lineTooLong, authenticationFailed, protocolError(String)

    var description: String {
        switch self {
        case .silent: return "the connection went silent"
        case .lineTooLong: return "the server sent a line longer than IRC allows"
        case .authenticationFailed: return "authentication failed"
        case .protocolError(let what): return what
        }
    }
}
