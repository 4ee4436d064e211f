import HubCore
import NIOCore
import NIOWebSocket
import Synchronization

/// One client WebSocket registered with the ``WebSocketHub``.
///
/// Frames are complete, pre-encoded WebSocket frames that the hub encoded once for everyone, written on
/// the connection's event loop with no per-client copy or encoding. While nothing of the connection waits
/// in NIO's write queue, a frame goes to the socket with one `write(2)` of the shared bytes (see
/// ``DirectSocket``); what the socket does not take at once — a client that reads slowly — is handed to
/// the channel core (what the pipeline's head does with any write), and every frame after it goes the same
/// way until NIO has written them all, so the order never changes. The outbound queue is the channel's own
/// write buffer, bounded by its high-water mark: a client whose buffer passes it is too slow and is
/// disconnected, so it can never hold up the broadcast or grow memory without bound.
public final class HubConnection: Sendable {
    /// Outcome of writing one frame.
    enum WriteResult {
        case sent
        /// Handed to NIO's write queue: the client's socket could not take it at once (or frames before it
        /// are still queued).
        case queued
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
    /// The socket's descriptor for direct writes, or -1 (not found: every write goes through NIO).
    /// Confined to `channel.eventLoop`, like everything below that is `nonisolated(unsafe)`.
    nonisolated(unsafe) private var descriptor: CInt = -1
    /// Writes handed to NIO and not yet completed. Direct writes wait until it is 0 again.
    nonisolated(unsafe) private var queuedInNIO = 0
    /// Whether the next frame may go straight to the socket: nothing of ours is queued in NIO and NIO has
    /// completed at least one of our writes (so the upgrade response before it is out, too).
    nonisolated(unsafe) private var direct = false
    /// NIO has completed one of our writes: from then on, a frame that goes through NIO waits behind others.
    nonisolated(unsafe) private var warm = false
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
        descriptor = DirectSocket.descriptor(of: channel) ?? -1
        let low = max(1024, maxQueuedBytes / 2)
        try? channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: low, high: maxQueuedBytes))
    }

    /// Writes and flushes one complete encoded frame. Must run on the channel's event loop.
    func writeOnLoop(_ frame: ByteBuffer) -> WriteResult {
        guard !isClosing else { return .closed }
        return writeFrame(frame)
    }

    /// Writes one frame: straight to the socket when nothing is queued before it, otherwise (and for what
    /// the socket did not take) through NIO.
    private func writeFrame(_ frame: ByteBuffer) -> WriteResult {
        if direct {
            // An inactive channel has closed its descriptor (the number may already name another socket).
            guard channel.isActive else { direct = false; return .closed }
            let written = frame.withUnsafeReadableBytes { DirectSocket.write(descriptor, $0) }
            if written == frame.readableBytes { return .sent }
            direct = false
            var rest = frame
            if let written { rest.moveReaderIndex(forwardBy: written) }
            return queue(rest, behind: true)
        }
        return queue(frame, behind: warm)
    }

    /// Hands a frame to NIO's write queue. With a descriptor, the write is tracked: once NIO has completed
    /// every queued one, frames go direct again.
    private func queue(_ frame: ByteBuffer, behind: Bool) -> WriteResult {
        guard let core else { return .closed }
        guard descriptor >= 0 else {
            core.write0(NIOAny(frame), promise: nil)
            core.flush0()
            return channel.isWritable ? .sent : .slow
        }
        queuedInNIO += 1
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { result in
            self.queuedInNIO -= 1
            guard case .success = result else { return }
            self.warm = true
            if self.queuedInNIO == 0 { self.direct = true }
        }
        core.write0(NIOAny(frame), promise: promise)
        core.flush0()
        return !channel.isWritable ? .slow : behind ? .queued : .sent
    }

    /// Writes a frame meant for this client alone (a pong, an error frame). Runs on the channel's event loop.
    func writeControlOnLoop(_ frame: ByteBuffer) {
        _ = writeOnLoop(frame)
    }

    /// Writes a close frame even while closing (it is the last frame). Runs on the channel's event loop.
    func writeCloseOnLoop(code: UInt16, reason: String) {
        var payload = ByteBuffer()
        payload.writeInteger(code)
        payload.writeString(String(reason.utf8.prefix(120)) ?? "")
        _ = writeFrame(WebSocketWire.frame(opcode: 0x8, payload: payload))
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
