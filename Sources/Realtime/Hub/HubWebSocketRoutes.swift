import HubCore
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import Synchronization

/// The WebSocket endpoints served by the hub, by exact path. A request to one of these paths that asks
/// for a WebSocket upgrade is decided by its route; a refused or non-WebSocket request falls through to the
/// HTTP router, whose route for the same path answers with the JSON error.
public final class HubWebSocketRoutes: Sendable {
    /// What an accepted upgrade becomes.
    public struct Accepted: Sendable {
        public var topic: String
        /// Who holds the connection; events reach it only where their visibility admits its audience.
        public var identity: ChannelIdentity
        public var filter: EventFilter
        /// Frames sent before anything else (a welcome message, the current state).
        public var initialFrames: [ByteBuffer]
        public var replayHistory: Bool
        /// Handles one client text message on the connection's event loop; it must not block.
        public var onText: @Sendable (String, HubConnection) -> Void
        /// Called once the connection is registered and its initial frames are written, on its event loop;
        /// it must not block (start a task for anything slow).
        public var afterAttach: (@Sendable (HubConnection) -> Void)?
        /// Called once when the connection has gone, on its event loop.
        public var onClose: (@Sendable (HubConnection) -> Void)?

        public init(topic: String, identity: ChannelIdentity, filter: EventFilter = .everything, initialFrames: [ByteBuffer] = [],
                    replayHistory: Bool = true, onText: @escaping @Sendable (String, HubConnection) -> Void = { _, _ in },
                    afterAttach: (@Sendable (HubConnection) -> Void)? = nil, onClose: (@Sendable (HubConnection) -> Void)? = nil) {
            self.topic = topic
            self.identity = identity
            self.filter = filter
            self.initialFrames = initialFrames
            self.replayHistory = replayHistory
            self.onText = onText
            self.afterAttach = afterAttach
            self.onClose = onClose
        }
    }

    /// Decides an upgrade request: the accepted connection, or `nil` to refuse it.
    public typealias Decide = @Sendable (_ uri: URI, _ headers: HTTPHeaders) async throws -> Accepted?

    private let routes = Mutex<[String: Decide]>([:])
    private let prefixes = Mutex<[(prefix: String, decide: Decide)]>([])

    public init() {}

    /// Serves WebSockets at `path` (exact match, without the query).
    public func add(_ path: String, decide: @escaping Decide) {
        routes.withLock { $0[path] = decide }
    }

    /// Serves WebSockets at every path that starts with `prefix` (e.g. `/ws/captions/`); the route reads
    /// the rest of the path from the URI.
    public func add(prefix: String, decide: @escaping Decide) {
        prefixes.withLock { $0.append((prefix, decide)) }
    }

    /// An accepted upgrade that only says why it is refused: the client gets `code` and `reason` in a close
    /// frame (browsers cannot read an HTTP error on a WebSocket upgrade).
    public static func refused(code: UInt16, reason: String) -> Accepted {
        Accepted(topic: "refused", identity: .anonymous, filter: .only([]), replayHistory: false,
                 afterAttach: { $0.close(code: code, reason: reason) })
    }

    func route(for path: String) -> Decide? {
        if let exact = routes.withLock({ $0[path] }) { return exact }
        return prefixes.withLock { $0.first { path.hasPrefix($0.prefix) && path.count > $0.prefix.count }?.decide }
    }
}
