import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import Synchronization

/// The server's child channel: HTTP/1.1 for every route, and a WebSocket upgrade for the hub's routes
/// that leaves no task behind.
///
/// Hummingbird keeps one task per WebSocket for as long as it is open; its async call chain alone holds
/// about 16 KB per connection. Here an accepted upgrade installs ``HubWebSocketHandler`` in the channel
/// pipeline and registers the connection with the hub, both on the event loop, and the connection's task
/// ends: the connection lives on as the channel and its few handlers. Everything else (plain HTTP, refused
/// upgrades) is Hummingbird's HTTP/1.1 handling, unchanged.
public struct HubHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case webSocket
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// A WebSocket asked for where there is none, or refused: answered with this status and closed.
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, HTTPResponse.Status, String)
    }

    public struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        public let channel: any Channel
    }

    public let responder: HTTPChannelHandler.Responder
    let routes: HubWebSocketRoutes
    let fastRoutes: HubFastRoutes
    let hub: WebSocketHub
    let maxFrameSize: Int

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // A response body (a segment, a page of streams) is written without waiting for the socket to drain
            // at NIO's default 64 KiB mark: one write and no writability round trip per response. WebSocket
            // connections set their own marks when the hub takes them over.
            try channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            // Carries the route's decision from `shouldUpgrade` to the pipeline handler of the same request.
            let decision = Mutex<HubWebSocketRoutes.Accepted?>(nil)
            // Why an upgrade asked for was not made. NIO passes the rest of such a request on without its head
            // (apple/swift-nio#2632), so the HTTP handlers could never answer it: it gets this answer instead.
            let refusal = Mutex<(status: HTTPResponse.Status, message: String)?>(nil)
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: maxFrameSize,
                enableAutomaticErrorHandling: true,
                shouldUpgrade: { channel, head in
                    let uri = URI(head.uri)
                    guard let decide = routes.route(for: uri.path) else {
                        refusal.withLock { $0 = (.notFound, "there is no WebSocket endpoint at this path") }
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        let decided: HubWebSocketRoutes.Accepted?
                        do {
                            decided = try await decide(uri, head.headers)
                        } catch {
                            logger.warning("a WebSocket upgrade failed", metadata: ["path": "\(uri.path)", "error": "\(error)"])
                            decided = nil
                        }
                        guard let accepted = decided else {
                            refusal.withLock { $0 = (.badRequest, "the WebSocket upgrade was refused") }
                            return nil
                        }
                        decision.withLock { $0 = accepted }
                        return HTTPHeaders()
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let accepted = decision.withLock({ $0 }) else { throw WebSocketHub.ShuttingDown() }
                        let connection = try hub.attachOnLoop(channel: channel, accepted: accepted)
                        try channel.pipeline.syncOperations.addHandler(
                            HubWebSocketHandler(connection: connection, hub: hub, onText: accepted.onText, maxMessageSize: maxFrameSize,
                                                onClose: accepted.onClose))
                        accepted.afterAttach?(connection)
                        return UpgradeResult.webSocket
                    }
                }
            )
            let configuration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if !fastRoutes.isEmpty {
                            try channel.pipeline.syncOperations.addHandler(HubFastPathHandler(routes: fastRoutes))
                        }
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        if let refused = refusal.withLock({ $0 }) { return UpgradeResult.refusedUpgrade(http, refused.status, refused.message) }
                        return UpgradeResult.http(http)
                    }
                }
            )
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: configuration)
            pipeline.enablePipelining = false  // NIOAsyncChannel serialises requests
            pipeline.enableErrorHandling = true  // malformed or oversized requests get 400 and a close
            pipeline.enableResponseHeaderValidation = false  // HTTPTypes validates already
            // The same header limits as Hummingbird's own HTTP/1.1 channel.
            let limits = HTTP1Channel.Configuration().httpDecoder
            pipeline.decoderConfiguration.maxHeaderFieldSize = limits.maxHeaderFieldSize
            pipeline.decoderConfiguration.maxHeaderListSize = limits.maxHeaderListSize
            pipeline.decoderConfiguration.maxHeaderFieldCount = limits.maxHeaderFieldCount
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
            return Value(upgradeResult: result, channel: channel)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .webSocket:
                return  // the hub owns the connection now; nothing waits on it
            case .refusedUpgrade(let http, let status, let message):
                try await http.executeThenClose { _, outbound in
                    let body = ByteBuffer(string: #"{"error":{"code":"\#(status == .notFound ? "not_found" : "bad_request")","message":"\#(message)"}}"#)
                    try await outbound.write(contentsOf: [
                        .head(HTTPResponse(status: status, headerFields: [
                            .connection: "close", .contentType: "application/json", .contentLength: "\(body.readableBytes)",
                        ])),
                        .body(body), .end(nil),
                    ])
                }
            }
        } catch let error as ChannelError where error == .inputClosed {
            logger.trace("connection closed before the upgrade decision")
        } catch {
            logger.warning("an upgrade failed", metadata: ["error": "\(error)"])
            try? await value.channel.close()
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with task-free WebSocket upgrades for the hub's routes.
    public static func hub(routes: HubWebSocketRoutes, fastRoutes: HubFastRoutes = HubFastRoutes(), hub: WebSocketHub,
                           maxFrameSize: Int) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            HubHTTPChannel(responder: responder, routes: routes, fastRoutes: fastRoutes, hub: hub, maxFrameSize: maxFrameSize)
        }
    }
}
