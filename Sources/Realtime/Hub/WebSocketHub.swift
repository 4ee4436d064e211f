import Foundation
import HubCore
import Logging
import Metrics
import NIOCore
import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// The connection registry behind every real-time feature: connections grouped by topic and, within a
/// topic, by event loop.
///
/// A broadcast encodes its frame once, appends it to the topic's history (when the topic keeps one) and
/// hands one task to each event loop, which writes the shared bytes to each of its connections. All of
/// that happens in the order broadcasts take the registry lock, so every client of a topic sees the same
/// order, and a client that connects while broadcasts are under way gets each frame exactly once: from
/// the history replay or live, never both.
///
/// As a `Service`, on graceful shutdown it stops accepting connections and closes every open one with
/// 1001 (going away).
public final class WebSocketHub: Service, Sendable {
    /// Connections of one event loop and one audience: the unit a broadcast is decided for (visibility is
    /// checked once per bucket, never per client) and written by (one task per loop).
    struct BucketKey: Hashable {
        let loop: ObjectIdentifier
        let audience: Audience
    }

    struct LoopBucket {
        let loop: any EventLoop
        var connections: [UInt64: HubConnection] = [:] {
            didSet { list = nil }
        }
        /// `connections` as an array in the order they connected, rebuilt on the first broadcast after a
        /// change: iterating it is much cheaper than iterating the dictionary, connection storms do not
        /// rebuild it each time, and writing in connection order walks the sockets' kernel memory (and a
        /// client machine's) in the order it was allocated, not in hash order.
        var list: ContiguousArray<HubConnection>?
    }

    struct Topic {
        var buckets: [BucketKey: LoopBucket] = [:]
        var history: HistoryRing?
        var count = 0

        /// Records `frame` in the history and hands the connections of each bucket whose audience may see
        /// it to `enqueue`, by loop.
        mutating func prepareBroadcast(_ frame: ByteBuffer, at now: Date, visibility: EventVisibility,
                                       enqueue: (any EventLoop, ContiguousArray<HubConnection>) -> Void) {
            history?.append(frame, at: now, visibility: visibility)
            for key in Array(buckets.keys) where visibility.admits(key.audience) {
                guard let bucket = buckets[key], !bucket.connections.isEmpty else { continue }
                let list = bucket.list ?? ContiguousArray(bucket.connections.values.sorted { $0.id < $1.id })
                if bucket.list == nil { buckets[key]?.list = list }
                enqueue(bucket.loop, list)
            }
        }
    }

    struct State {
        var topics: [String: Topic] = [:]
        var accepting = true
        var total = 0
    }

    /// Thrown when a connection arrives after shutdown began.
    public struct ShuttingDown: Error {}

    private let state = Mutex(State())
    private let historyPolicies: [(prefix: String, policy: HistoryRing.Policy)]
    private let nextID = Atomic<UInt64>(0)
    private let clock: any WallClock
    private let logger: Logger
    private let metrics: HubMetrics
    /// Outbound bytes one client may have queued before it is disconnected as too slow.
    public let maxQueuedBytes: Int
    /// Time between pings; a client that answers none of two consecutive pings is closed.
    public let pingInterval: Duration
    /// Unanswered pings after which a client is closed.
    public static let missedPingLimit = 2

    /// - Parameter historyPolicies: topics whose name starts with a prefix keep that many frames for that
    ///   many seconds, replayed to each new client before live frames.
    public init(
        maxQueuedBytes: Int,
        pingInterval: Duration = .seconds(30),
        historyPolicies: [(prefix: String, capacity: Int, maxAge: TimeInterval)] = [],
        clock: any WallClock = SystemWallClock(),
        logger: Logger,
        metrics: any MetricsFactory
    ) {
        self.maxQueuedBytes = maxQueuedBytes
        self.pingInterval = pingInterval
        self.historyPolicies = historyPolicies.map { ($0.prefix, HistoryRing.Policy(capacity: $0.capacity, maxAge: $0.maxAge)) }
        self.clock = clock
        self.logger = logger
        self.metrics = HubMetrics(factory: metrics)
    }

    /// Registers a freshly upgraded connection. Runs on the channel's event loop, before the channel reads
    /// anything else: it writes the accepted route's initial frames and then (if asked) the topic's
    /// history, and no broadcast can reach the connection before those.
    ///
    /// - Throws: ``ShuttingDown`` once the hub stopped accepting connections.
    func attachOnLoop(channel: any Channel, accepted: HubWebSocketRoutes.Accepted) throws -> HubConnection {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let connection = HubConnection(id: id, topic: accepted.topic, channel: channel, filter: accepted.filter, identity: accepted.identity)
        connection.prepareOnLoop(maxQueuedBytes: maxQueuedBytes)
        let now = clock.now()
        let topic = accepted.topic
        let audience = accepted.identity.audience
        let history = try state.withLock { state -> [ByteBuffer] in
            guard state.accepting else { throw ShuttingDown() }
            var entry = state.topics.removeValue(forKey: topic) ?? makeTopic(topic)
            let key = BucketKey(loop: ObjectIdentifier(channel.eventLoop), audience: audience)
            entry.buckets[key, default: LoopBucket(loop: channel.eventLoop)].connections[id] = connection
            entry.count += 1
            state.total += 1
            let history = accepted.replayHistory ? (entry.history?.frames(at: now, for: audience) ?? []) : []
            state.topics[topic] = entry
            return history
        }
        for frame in accepted.initialFrames + history {
            _ = connection.writeOnLoop(frame)
        }
        scheduleExpiry(of: connection, identity: accepted.identity)
        metrics.connected(topic: topic)
        return connection
    }

    /// Changes who a connection is (a cable that signed in with its first message): from now on it receives
    /// what the new audience may see, and it is closed when the new credential expires.
    public func setIdentity(_ identity: ChannelIdentity, of connection: HubConnection) {
        let loop = ObjectIdentifier(connection.channel.eventLoop)
        state.withLock { state in
            let old = connection.identity
            connection.storeIdentity(identity)
            guard old.audience != identity.audience, var entry = state.topics[connection.topic],
                  entry.buckets[BucketKey(loop: loop, audience: old.audience)]?.connections.removeValue(forKey: connection.id) != nil
            else { return }
            let oldKey = BucketKey(loop: loop, audience: old.audience)
            if entry.buckets[oldKey]?.connections.isEmpty == true { entry.buckets.removeValue(forKey: oldKey) }
            entry.buckets[BucketKey(loop: loop, audience: identity.audience), default: LoopBucket(loop: connection.channel.eventLoop)]
                .connections[connection.id] = connection
            state.topics[connection.topic] = entry
        }
        scheduleExpiry(of: connection, identity: identity)
    }

    /// Closes the connection with 4401 when its credential expires.
    private func scheduleExpiry(of connection: HubConnection, identity: ChannelIdentity) {
        guard let expiresAt = identity.expiresAt else { return connection.setExpiry(nil) }
        let delay = max(0, expiresAt - clock.now().timeIntervalSince1970)
        // The task holds the connection only weakly: a connection that went first is not kept until then.
        let task = connection.eventLoop.scheduleTask(in: .milliseconds(Int64(min(delay, 400 * 86_400) * 1000))) { [weak self, weak connection] in
            guard let self, let connection else { return }
            self.disconnect(connection)
            connection.close(code: ChannelCloseCode.unauthorized, reason: "the token expired; sign in again")
        }
        connection.setExpiry(task)
    }

    /// Closes every connection whose identity matches (a logout, a disabled account, a revoked key), with
    /// `code` and `reason`. Answers how many were closed.
    @discardableResult
    public func closeConnections(code: UInt16, reason: String, where matches: (ChannelIdentity) -> Bool) -> Int {
        let all = state.withLock { state in state.topics.values.flatMap { $0.buckets.values.flatMap { $0.connections.values } } }
        var closed = 0
        for connection in all where !connection.isClosing && matches(connection.identity) {
            disconnect(connection)
            connection.close(code: code, reason: reason)
            closed += 1
        }
        return closed
    }

    /// Removes a connection (when its WebSocket ended). Safe to call more than once.
    public func disconnect(_ connection: HubConnection) {
        let removed = state.withLock { state -> Bool in
            guard var entry = state.topics[connection.topic] else { return false }
            let key = BucketKey(loop: ObjectIdentifier(connection.channel.eventLoop), audience: connection.identity.audience)
            guard entry.buckets[key]?.connections.removeValue(forKey: connection.id) != nil else { return false }
            // An audience that has gone from this loop (the last overlay of a community, say) leaves no bucket behind.
            if entry.buckets[key]?.connections.isEmpty == true { entry.buckets.removeValue(forKey: key) }
            entry.count -= 1
            state.total -= 1
            if entry.count == 0, entry.history == nil {
                state.topics.removeValue(forKey: connection.topic)
            } else {
                state.topics[connection.topic] = entry
            }
            return true
        }
        if removed {
            connection.setExpiry(nil)
            metrics.disconnected(topic: connection.topic)
        }
    }

    /// Sends a text frame with `payload` to every connection on `topic` that may see it (`visibility`) and
    /// accepts `eventType`.
    public func broadcast(text payload: ByteBuffer, to topic: String, visibility: EventVisibility, eventType: String? = nil) {
        broadcast(frame: WebSocketWire.textFrame(payload), to: topic, visibility: visibility, eventType: eventType)
    }

    /// Sends an already encoded frame (see ``WebSocketWire``) to every connection on `topic` whose audience
    /// `visibility` admits. The check is made once per audience bucket, not per client.
    public func broadcast(frame: ByteBuffer, to topic: String, visibility: EventVisibility, eventType: String? = nil) {
        let now = clock.now()
        state.withLock { state in
            if state.topics[topic] == nil {
                guard let policy = policy(for: topic) else { return }
                state.topics[topic] = Topic(history: HistoryRing(policy: policy))
            }
            // Mutated in place (no copy of the history or the buckets); the loop tasks are enqueued under
            // the lock, so every loop runs broadcasts in the same order. Each loop writes its own copy of
            // the frame, so two cores never bump one buffer's reference count for every client.
            var copies: [ObjectIdentifier: ByteBuffer] = [:]
            state.topics[topic]?.prepareBroadcast(frame, at: now, visibility: visibility) { loop, connections in
                let key = ObjectIdentifier(loop)
                let copy = copies[key] ?? (copies.isEmpty ? frame : ByteBuffer(bytes: frame.readableBytesView))
                copies[key] = copy
                loop.execute { self.deliver(copy, eventType: eventType, to: connections) }
            }
        }
    }

    /// Runs on one event loop: writes the frame to each of that loop's connections on the topic.
    private func deliver(_ frame: ByteBuffer, eventType: String?, to connections: ContiguousArray<HubConnection>) {
        var sent = 0
        var queued = 0
        var skipped = 0
        var slow: [HubConnection] = []
        for connection in connections {
            guard connection.acceptsOnLoop(eventType) else { continue }
            switch connection.writeOnLoop(frame) {
            case .sent: sent += 1
            case .queued: sent += 1; queued += 1
            case .slow: sent += 1; slow.append(connection)
            case .closed: skipped += 1
            }
        }
        metrics.sent(sent, queued: queued, dropped: skipped)
        for connection in slow {
            disconnect(connection)
            metrics.slowClientDisconnected()
            logger.info("disconnecting a client too slow to keep up", metadata: [
                "topic": "\(connection.topic)", "connection_id": "\(connection.id)", "max_queued_bytes": "\(maxQueuedBytes)",
            ])
            connection.beginClose(.init(codeNumber: 1013), reason: "too slow: more than \(maxQueuedBytes) bytes queued; reconnect")
        }
    }

    /// Number of open connections, on one topic or overall.
    public func connectionCount(topic: String? = nil) -> Int {
        state.withLock { state in
            guard let topic else { return state.total }
            return state.topics[topic]?.count ?? 0
        }
    }

    /// Pings every client each ``pingInterval`` until graceful shutdown, then closes every connection
    /// with 1001. The pings are spread over the interval — one slice of the clients (by connection id) a
    /// second — so they never arrive as one burst on top of a broadcast.
    public func run() async throws {
        let slices = heartbeatSlices
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var tick = 0
                while !Task.isCancelled {
                    do { try await Task.sleep(for: self.pingInterval / slices) } catch { return }
                    self.heartbeat(slice: tick % slices, of: slices)
                    tick += 1
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await closeAll(code: .goingAway, reason: "server shutting down")
    }

    /// How many slices the heartbeat spreads the clients over: one a second, at most 30.
    var heartbeatSlices: Int {
        max(1, min(30, Int(pingInterval.components.seconds)))
    }

    /// One heartbeat of one slice of the clients (those whose id is `slice` modulo `slices`): on each event
    /// loop, ping them and close those that answered none of their last ``missedPingLimit`` pings.
    func heartbeat(slice: Int = 0, of slices: Int = 1) {
        let buckets = state.withLock { state in state.topics.values.flatMap { $0.buckets.values } }
        for bucket in buckets {
            bucket.loop.execute {
                for connection in bucket.connections.values
                where (slices == 1 || Int(connection.id % UInt64(slices)) == slice)
                    && !connection.heartbeatOnLoop(ping: WebSocketWire.pingFrame, limit: Self.missedPingLimit) {
                    self.disconnect(connection)
                    self.logger.info("closing a client that stopped answering pings", metadata: ["connection_id": "\(connection.id)"])
                    connection.beginClose(.goingAway, reason: "ping timeout", grace: .seconds(1))
                }
            }
        }
    }

    /// Stops accepting connections and closes every open one with `code`, waiting (up to `timeout`) until
    /// their handlers have finished.
    public func closeAll(code: WebSocketErrorCode, reason: String, timeout: Duration = .seconds(5)) async {
        let connections = state.withLock { state -> [HubConnection] in
            state.accepting = false
            return state.topics.values.flatMap { $0.buckets.values.flatMap { $0.connections.values } }
        }
        logger.info("closing WebSockets", metadata: ["count": "\(connections.count)", "code": "\(code)"])
        for connection in connections {
            connection.beginClose(code, reason: reason, grace: .seconds(Int64(timeout.components.seconds)))
        }
        let deadline = ContinuousClock.now + timeout
        while connectionCount() > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func makeTopic(_ name: String) -> Topic {
        Topic(history: policy(for: name).map(HistoryRing.init(policy:)))
    }

    private func policy(for topic: String) -> HistoryRing.Policy? {
        historyPolicies.first { topic.hasPrefix($0.prefix) }?.policy
    }
}
