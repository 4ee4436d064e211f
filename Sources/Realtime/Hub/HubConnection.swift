import HubCore
import NIOCore
import NIOWebSocket
import Synchronization

/// One client WebSocket registered with the ``WebSocketHub``.
///
/// Frames are complete, pre-encoded WebSocket frames that the hub encoded once for everyone; they are
/// handed straight to the channel core on the connection's event loop (what the pipeline's head does with
/// any write), so a broadcast costs one `write` per client and no per-client copy or encoding. The
/// outbound queue is the channel's own write buffer, bounded by its high-water mark: a client whose buffer
/// passes it is too slow and is disconnected, so it can never hold up the broadcast or grow memory without
/// bound.
public final class HubConnection: Sendable {
    /// Outcome of writing one frame.
    enum WriteResult {
        case sent
        /// Written, but the client is now over its queue bound.
        case slow
        /// Not written: the connection is closing.
        case closed
    }

    public let id: UInt64
    public let topic: String
    let channel: any Channel
    /// Only read and written on `channel.eventLoop` (every caller runs there: `prepareOnLoop`,
    /// `writeOnLoop`, `heartbeatOnLoop`, `heardFromClientOnLoop`), so no two threads ever touch it.
    nonisolated(unsafe) private var core: (any ChannelCore)?
    /// Pings sent since the client was last heard from; confined to `channel.eventLoop` like `core`.
    nonisolated(unsafe) private var unansweredPings = 0
    private let filter: Mutex<EventFilter>
    /// Mirrors `filter == .everything`, so the common case skips the lock on every broadcast.
    private let acceptsEverything: Atomic<Bool>
    /// Bumped by every filter change; the loop-confined cache below is valid for one generation.
    private let filterGeneration = Atomic<UInt64>(0)
    /// The last event type asked about on the connection's loop and the answer, so a broadcast costs a
    /// filtered client one atomic load and one short string comparison instead of a lock and a hash.
    /// Confined to `channel.eventLoop`, like `core`.
    nonisolated(unsafe) private var cachedType: String?
    nonisolated(unsafe) private var cachedAccepts = false
    nonisolated(unsafe) private var cachedGeneration: UInt64 = .max
    private let closing = Atomic<Bool>(false)
    /// Who holds the connection; changed only by the hub, under its lock (see ``WebSocketHub/setIdentity(_:of:)``).
    private let identityStorage: Mutex<ChannelIdentity>
    /// The close scheduled for when the credential expires; cancelled when the connection goes, so a closed
    /// connection is not kept alive until its token would have expired.
    private let expiry = Mutex<Scheduled<Void>?>(nil)

    init(id: UInt64, topic: String, channel: any Channel, filter: EventFilter, identity: ChannelIdentity = .anonymous) {
        self.id = id
        self.topic = topic
        self.channel = channel
        self.filter = Mutex(filter)
        self.acceptsEverything = Atomic(filter == .everything)
        self.identityStorage = Mutex(identity)
    }

    /// Who holds the connection: its audience and credential.
    public var identity: ChannelIdentity { identityStorage.withLock { $0 } }

    func storeIdentity(_ identity: ChannelIdentity) {
        identityStorage.withLock { $0 = identity }
    }

    /// Replaces the scheduled expiry close (cancelling the previous one), or cancels it (`nil`).
    func setExpiry(_ task: Scheduled<Void>?) {
        expiry.withLock { current in
            current?.cancel()
            current = task
        }
    }

    /// Whether the connection wants events of `type` (frames without a type always go out). Runs on the
    /// connection's event loop.
    func acceptsOnLoop(_ type: String?) -> Bool {
        guard let type, !acceptsEverything.load(ordering: .relaxed) else { return true }
        let generation = filterGeneration.load(ordering: .acquiring)
        if generation == cachedGeneration, cachedType == type { return cachedAccepts }
        let accepted = filter.withLock { $0.accepts(type) }
        cachedType = type
        cachedAccepts = accepted
        cachedGeneration = generation
        return accepted
    }

    /// Changes which event types the connection receives and answers the new filter.
    public func updateFilter(_ change: (inout EventFilter) -> Void) -> EventFilter {
        filter.withLock { filter in
            change(&filter)
            acceptsEverything.store(filter == .everything, ordering: .relaxed)
            filterGeneration.wrappingAdd(1, ordering: .releasing)
            return filter
        }
    }

    /// The event loop the connection lives on.
    public var eventLoop: any EventLoop { channel.eventLoop }

    public var isClosing: Bool { closing.load(ordering: .relaxed) }

    /// Bounds the write buffer. Must run on the channel's event loop.
    func prepareOnLoop(maxQueuedBytes: Int) {
        channel.eventLoop.assertInEventLoop()
        core = channel._channelCore
        let low = max(1024, maxQueuedBytes / 2)
        try? channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: low, high: maxQueuedBytes))
    }

    /// Writes and flushes one complete encoded frame. Must run on the channel's event loop.
    func writeOnLoop(_ frame: ByteBuffer) -> WriteResult {
        guard !isClosing, let core else { return .closed }
        core.write0(NIOAny(frame), promise: nil)
        core.flush0()
        return channel.isWritable ? .sent : .slow
    }

    /// Writes a frame meant for this client alone (a pong, an error frame). Runs on the channel's event loop.
    func writeControlOnLoop(_ frame: ByteBuffer) {
        _ = writeOnLoop(frame)
    }

    /// Writes a close frame even while closing (it is the last frame). Runs on the channel's event loop.
    func writeCloseOnLoop(code: UInt16, reason: String) {
        guard let core else { return }
        var payload = ByteBuffer()
        payload.writeInteger(code)
        payload.writeString(String(reason.utf8.prefix(120)) ?? "")
        core.write0(NIOAny(WebSocketWire.frame(opcode: 0x8, payload: payload)), promise: nil)
        core.flush0()
    }

    /// Stops further writes without sending anything (the client started the closing handshake).
    func markClosing() {
        closing.store(true, ordering: .relaxed)
    }

    /// The client sent a frame (a pong, usually): it is alive. Runs on the channel's event loop.
    func heardFromClientOnLoop() {
        unansweredPings = 0
    }

    /// One heartbeat tick on the channel's event loop: `false` when the client has left `limit` pings
    /// unanswered (the caller closes it); otherwise sends `ping` and answers `true`.
    func heartbeatOnLoop(ping: ByteBuffer, limit: Int) -> Bool {
        guard !isClosing else { return true }
        if unansweredPings >= limit { return false }
        unansweredPings += 1
        return writeOnLoop(ping) != .closed
    }

    /// Sends one frame to this connection only, in order with broadcasts.
    public func send(_ frame: ByteBuffer) {
        channel.eventLoop.execute { _ = self.writeOnLoop(frame) }
    }

    /// Closes the connection with an application close code (e.g. 4401) and a short reason.
    public func close(code: UInt16, reason: String) {
        beginClose(WebSocketErrorCode(codeNumber: Int(code)), reason: String(reason.utf8.prefix(120)) ?? "")
    }

    /// Starts the closing handshake: no more frames are written, a close frame with `code` goes out, and
    /// the socket is closed when the client answers, or outright after `grace`.
    func beginClose(_ code: WebSocketErrorCode, reason: String, grace: TimeAmount = .seconds(3)) {
        guard !closing.exchange(true, ordering: .relaxed) else { return }
        let channel = self.channel
        channel.eventLoop.execute {
            var encoded = ByteBuffer()
            encoded.write(webSocketErrorCode: code)
            self.writeCloseOnLoop(code: encoded.readInteger(as: UInt16.self) ?? 1000, reason: reason)
            channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
        }
    }
}

/// Application close codes the hub's channels use.
public enum ChannelCloseCode {
    /// No, invalid, expired or revoked credentials.
    public static let unauthorized: UInt16 = 4401
    /// Valid credentials that may not use this channel (a key of another community, too small a role).
    public static let forbidden: UInt16 = 4403
    public static let notFound: UInt16 = 4404
}

/// Which event types a connection receives.
public enum EventFilter: Sendable, Equatable {
    /// Everything but the listed types.
    case all(except: Set<String>)
    /// Only the listed types.
    case only(Set<String>)

    public static let everything = EventFilter.all(except: [])

    public func accepts(_ type: String) -> Bool {
        switch self {
        case .all(let excluded): return !excluded.contains(type)
        case .only(let included): return included.contains(type)
        }
    }

    /// After `{"subscribe":[…]}`: receiving everything narrows to the listed types; a narrowed filter widens
    /// by them. `*` means everything.
    public mutating func subscribe(_ types: [String]) {
        if types.contains("*") { self = .everything; return }
        switch self {
        case .all(let excluded) where excluded.isEmpty: self = .only(Set(types))
        case .all(let excluded): self = .all(except: excluded.subtracting(types))
        case .only(let included): self = .only(included.union(types))
        }
    }

    /// After `{"unsubscribe":[…]}`. `*` means nothing.
    public mutating func unsubscribe(_ types: [String]) {
        if types.contains("*") { self = .only([]); return }
        switch self {
        case .all(let excluded): self = .all(except: excluded.union(types))
        case .only(let included): self = .only(included.subtracting(types))
        }
    }
}
