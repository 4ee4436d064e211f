import NIOCore
import NIOWebSocket

/// Sits right after the frame decoder and tells the connection whenever the client sends anything (a pong
/// above all), so the hub's heartbeat knows it is alive. Frames pass through unchanged.
final class HeartbeatObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    private let connection: HubConnection

    init(connection: HubConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.heardFromClientOnLoop()
        context.fireChannelRead(data)
    }
}
