import HubCore
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket

/// Runs one hub-backed WebSocket from upgrade to close, for every WebSocket endpoint: registers the
/// connection (initial frames, history), reads client messages until the client leaves, and unregisters.
public struct WebSocketSession: Sendable {
    public let hub: WebSocketHub
    public let maxMessageSize: Int

    public init(hub: WebSocketHub, maxMessageSize: Int) {
        self.hub = hub
        self.maxMessageSize = maxMessageSize
    }

    /// - Parameter onText: handles one client text message; it may reply with `connection.send(_:)`.
    public func run(
        topic: String,
        filter: EventFilter = .everything,
        initialFrames: [ByteBuffer] = [],
        replayHistory: Bool = true,
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter,
        context: WebSocketRouterContext<HubRequestContext>,
        onText: @escaping @Sendable (String, HubConnection) async -> Void
    ) async throws {
        let connection: HubConnection
        do {
            connection = try await hub.connect(
                channel: context.requestContext.channel, topic: topic, filter: filter,
                initialFrames: initialFrames, replayHistory: replayHistory
            ) { code, reason in
                try? await outbound.close(code, reason: reason)
            }
        } catch is WebSocketHub.ShuttingDown {
            try await outbound.close(.goingAway, reason: "server shutting down")
            return
        }
        defer { hub.disconnect(connection) }
        for try await message in inbound.messages(maxSize: maxMessageSize) {
            switch message {
            case .text(let text):
                await onText(text, connection)
            case .binary:
                connection.send(ClientErrorFrame.make(code: "unsupported_message", message: "binary messages are not accepted; send JSON text"))
            }
        }
    }
}

/// `{"event":"error","code":…,"message":…}`: the answer to a client message the server cannot use. The
/// connection stays open.
public enum ClientErrorFrame {
    public static func make(code: String, message: String) -> ByteBuffer {
        WebSocketWire.textFrame(ByteBuffer(string: JSONText.object([("event", .string("error")), ("code", .string(code)), ("message", .string(message))])))
    }
}
