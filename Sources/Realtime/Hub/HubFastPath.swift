import Metrics
import NIOCore
import NIOHTTP1
import Synchronization

/// GET routes answered on the event loop from memory, before Hummingbird's request handling: the hot
/// paths that players poll (a recording's live playlist, its newest segments). A route answers `nil` when
/// it cannot answer from memory (a cache miss, a query it does not handle), and the request goes to the
/// router as usual.
public final class HubFastRoutes: Sendable {
    public struct Answer: Sendable {
        public var status: HTTPResponseStatus
        public var headers: [(String, String)]
        public var body: ByteBuffer

        public init(status: HTTPResponseStatus = .ok, headers: [(String, String)], body: ByteBuffer) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    /// Answers a GET for a path under the route's prefix; `rangeHeader` is the request's `Range`, if any.
    /// Runs on an event loop: it must not block.
    public typealias Answerer = @Sendable (_ path: Substring, _ rangeHeader: String?) -> Answer?

    private let routes = Mutex<[(prefix: String, answer: Answerer)]>([])
    let answered = Counter(label: "streamhub_http_fast_responses_total")

    public init() {}

    public func add(prefix: String, _ answer: @escaping Answerer) {
        routes.withLock { $0.append((prefix, answer)) }
    }

    var isEmpty: Bool { routes.withLock { $0.isEmpty } }

    func answer(_ uri: String, range: String?) -> Answer? {
        // Only plain paths: a query, an escape or a dot segment goes the long way.
        guard !uri.utf8.contains(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "%") }), !uri.contains("/.") else { return nil }
        let path = Substring(uri)
        let answerer = routes.withLock { $0.first { path.hasPrefix($0.prefix) }?.answer }
        return answerer?(path, range)
    }
}

/// Sits between the HTTP/1 codec and Hummingbird: answers fast routes itself and passes everything else on.
/// A request is answered here only while no earlier request of the connection is still with the router,
/// so responses keep their order.
final class HubFastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let routes: HubFastRoutes
    /// A request went to the router and its response has not ended yet.
    private var routerBusy = false
    /// The rest of a request answered here (its body and end) is dropped.
    private var swallowing = false
    private var closeAfterAnswer = false

    init(routes: HubFastRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if !routerBusy, head.method == .GET, let answer = routes.answer(head.uri, range: head.headers.first(name: "range")) {
                swallowing = true
                closeAfterAnswer = !head.isKeepAlive
                respond(answer, version: head.version, context: context)
                return
            }
            swallowing = false
            routerBusy = true
            context.fireChannelRead(data)
        case .body, .end:
            if swallowing {
                if case .end = part, closeAfterAnswer { context.close(promise: nil) }
                return
            }
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { routerBusy = false }
        context.write(data, promise: promise)
    }

    private func respond(_ answer: HubFastRoutes.Answer, version: HTTPVersion, context: ChannelHandlerContext) {
        var headers = HTTPHeaders(answer.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(answer.body.readableBytes))
        if closeAfterAnswer { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: answer.status, headers: headers))), promise: nil)
        if answer.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(answer.body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        routes.answered.increment()
    }
}
