import NIOCore
import NIOWebSocket

/// The whole WebSocket protocol of a hub connection after the upgrade, as a plain channel handler on the
/// connection's event loop: reassembles client messages (up to `maxMessageSize`), hands text messages to
/// the route, answers pings, notes that the client is alive for the heartbeat, completes the closing
/// handshake, and unregisters the connection when the channel goes away.
final class HubWebSocketHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame

    private let connection: HubConnection
    private let hub: WebSocketHub
    private let onText: @Sendable (String, HubConnection) -> Void
    private let maxMessageSize: Int
    private let onClose: (@Sendable (HubConnection) -> Void)?
    private var message: ByteBuffer?
    private var messageIsText = false

    init(connection: HubConnection, hub: WebSocketHub, onText: @escaping @Sendable (String, HubConnection) -> Void, maxMessageSize: Int,
         onClose: (@Sendable (HubConnection) -> Void)? = nil) {
        self.connection = connection
        self.onClose = onClose
        self.hub = hub
        self.onText = onText
        self.maxMessageSize = maxMessageSize
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        connection.heardFromClientOnLoop()
        switch frame.opcode {
        case .ping:
            guard frame.fin else { return fail(context, .protocolError) }
            connection.writeControlOnLoop(WebSocketWire.frame(opcode: 0xA, payload: frame.unmaskedData))
        case .pong:
            break
        case .connectionClose:
            if !connection.isClosing {
                // The client closes: answer with the same code, then hang up.
                var data = frame.unmaskedData
                let code = data.readInteger(as: UInt16.self) ?? 1000
                connection.markClosing()
                connection.writeCloseOnLoop(code: code, reason: "")
            }
            context.close(promise: nil)
        case .text, .binary:
            guard message == nil else { return fail(context, .protocolError) }
            messageIsText = frame.opcode == .text
            append(frame, context: context)
        case .continuation:
            guard message != nil else { return fail(context, .protocolError) }
            append(frame, context: context)
        default:
            fail(context, .protocolError)
        }
    }

    private func append(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var data = frame.unmaskedData
        if message == nil { message = context.channel.allocator.buffer(capacity: data.readableBytes) }
        guard (message?.readableBytes ?? 0) + data.readableBytes <= maxMessageSize else { return fail(context, .messageTooLarge) }
        message?.writeBuffer(&data)
        guard frame.fin, let complete = message else { return }
        message = nil
        if messageIsText {
            guard let text = String(validating: complete.readableBytesView, as: UTF8.self) else { return fail(context, .dataInconsistentWithMessage) }
            onText(text, connection)
        } else {
            connection.writeControlOnLoop(ClientErrorFrame.make(code: "unsupported_message", message: "binary messages are not accepted; send JSON text"))
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ code: WebSocketErrorCode) {
        message = nil
        connection.beginClose(code, reason: "", grace: .seconds(1))
    }

    func channelInactive(context: ChannelHandlerContext) {
        hub.disconnect(connection)
        onClose?(connection)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Protocol errors from the decoder were answered by NIO's error handler; anything else ends the connection.
        context.close(promise: nil)
    }
}
