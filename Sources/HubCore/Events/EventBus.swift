import Foundation
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Synchronization

/// The typed event bus every module publishes on and `Realtime` listens to.
///
/// - Publishing never waits: the event is encoded once, numbered, handed to every local subscriber and
///   queued for the backplane, all under one lock, so every subscriber sees one instance's events in
///   publish order.
/// - Subscribers read an `AsyncStream` with a bounded buffer; a subscriber that falls more than its buffer
///   behind loses the newest events, and each loss is counted in `streamhub_events_dropped_total`.
/// - With a distributed backplane, events from other instances are delivered exactly once each (duplicates
///   and this instance's own echoes are filtered by origin and sequence), in their publisher's order.
///
/// As a `Service`, it runs the backplane's send and receive loops; on graceful shutdown it sends what is
/// still queued, then stops.
public final class EventBus: Service, Sendable {
    private struct Subscriber {
        let continuation: AsyncStream<EventEnvelope>.Continuation
        let types: Set<String>?
    }

    private struct State {
        var sequence: UInt64 = 0
        var subscribers: [Int: Subscriber] = [:]
        var nextSubscriberID = 0
        var lastSeen: [String: UInt64] = [:]
    }

    /// This instance's origin: its instance id and a per-boot suffix, so a restarted instance starts a new
    /// sequence without being mistaken for duplicates.
    public let origin: String
    private let backplane: any Backplane
    private let outbound: BoundedQueue<EventEnvelope>
    private let state = Mutex(State())
    private let logger: Logger
    private let metrics: any MetricsFactory
    private let encoder: JSONEncoder

    public init(
        instanceID: String,
        backplane: any Backplane = InProcessBackplane(),
        outboundCapacity: Int = 65_536,
        logger: Logger,
        metrics: any MetricsFactory
    ) {
        self.origin = "\(instanceID)/\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        self.backplane = backplane
        self.outbound = BoundedQueue(capacity: outboundCapacity)
        self.logger = logger
        self.metrics = metrics
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        self.encoder = encoder
    }

    /// Publishes a typed event.
    public func publish<Event: HubEvent>(_ event: Event) throws {
        let data = try encoder.encode(event)
        publish(type: Event.eventType, payload: ByteBuffer(bytes: data), visibility: event.visibility)
    }

    /// Publishes an event whose fields are already encoded as a JSON object. `visibility` says who may
    /// receive it on any channel; without one, admins only.
    @discardableResult
    public func publish(type: String, payload: ByteBuffer, visibility: EventVisibility = .admins) -> EventEnvelope {
        let micros = Int64(Date().timeIntervalSince1970 * 1_000_000)
        var subscriberDrops = 0
        var queued = true
        let envelope = state.withLock { state -> EventEnvelope in
            state.sequence += 1
            let envelope = EventEnvelope(type: type, payload: payload, origin: origin, sequence: state.sequence, publishedAtMicros: micros,
                                         visibility: visibility)
            subscriberDrops = Self.deliver(envelope, to: state.subscribers)
            if backplane.isDistributed { queued = outbound.push(envelope) }
            return envelope
        }
        Counter(label: "streamhub_events_published_total", dimensions: [("type", type)], factory: metrics).increment()
        if subscriberDrops > 0 { countDrop("subscriber_behind", subscriberDrops) }
        if !queued {
            countDrop("backplane_queue_full", 1)
            logger.error("backplane queue full; event not sent to other instances", metadata: ["event_type": "\(type)"])
        }
        return envelope
    }

    /// Subscribes to events (all, or only `types`), including those from other instances.
    ///
    /// - Parameter bufferingLimit: how many events may wait for this subscriber; past that the newest are
    ///   dropped and counted.
    public func subscribe(types: Set<String>? = nil, bufferingLimit: Int = 16_384) -> AsyncStream<EventEnvelope> {
        let (stream, continuation) = AsyncStream<EventEnvelope>.makeStream(bufferingPolicy: .bufferingOldest(bufferingLimit))
        let id = state.withLock { state -> Int in
            state.nextSubscriberID += 1
            state.subscribers[state.nextSubscriberID] = Subscriber(continuation: continuation, types: types)
            return state.nextSubscriberID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Subscribes to one typed event, decoded.
    public func events<Event: HubEvent>(of type: Event.Type, bufferingLimit: Int = 16_384) -> AsyncCompactMapSequence<AsyncStream<EventEnvelope>, Event> {
        let decoder = JSONDecoder()
        return subscribe(types: [Event.eventType], bufferingLimit: bufferingLimit).compactMap { envelope in
            try? decoder.decode(Event.self, from: Data(envelope.payload.readableBytesView))
        }
    }

    /// Number of live subscribers (for tests and /health).
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Envelopes waiting to be sent to the backplane.
    public var backlog: Int { outbound.count }

    public func run() async throws {
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await self.backplane.receive { envelope in self.receivedFromBackplane(envelope) }
            }
            if backplane.isDistributed {
                group.addTask { await self.sendLoop() }
            }
            // Stop accepting backplane work on shutdown; the send loop drains what is queued, then ends.
            try? await gracefulShutdown()
            self.outbound.finish()
            if backplane.isDistributed { _ = try? await group.next() }
            group.cancelAll()
        }
        await backplane.shutdown()
        state.withLock { state in
            for subscriber in state.subscribers.values { subscriber.continuation.finish() }
        }
    }

    private func sendLoop() async {
        var failures = 0
        while let batch = await outbound.popBatch(maxCount: 256) {
            do {
                try await backplane.send(batch)
                failures = 0
            } catch {
                failures += 1
                let dropped = outbound.requeueFront(batch)
                if dropped > 0 { countDrop("backplane_queue_full", dropped) }
                logger.warning("backplane send failed; will retry", metadata: ["error": "\(error)", "queued": "\(outbound.count)"])
                let delay = min(5_000, 50 * (1 << min(failures, 7)))
                do { try await Task.sleep(for: .milliseconds(delay)) } catch { return }
            }
        }
    }

    /// Hands an envelope from the backplane to local subscribers, at most once per (origin, sequence).
    func receivedFromBackplane(_ envelope: EventEnvelope) {
        guard envelope.origin != origin else { return }
        var drops = 0
        var gap: UInt64 = 0
        let fresh = state.withLock { state -> Bool in
            let last = state.lastSeen[envelope.origin] ?? 0
            guard envelope.sequence > last else { return false }
            if last > 0, envelope.sequence > last + 1 { gap = envelope.sequence - last - 1 }
            if state.lastSeen.count > 10_000 { state.lastSeen.removeAll(keepingCapacity: true) }
            state.lastSeen[envelope.origin] = envelope.sequence
            drops = Self.deliver(envelope, to: state.subscribers)
            return true
        }
        guard fresh else { return }
        let lagMicros = max(0, Int64(Date().timeIntervalSince1970 * 1_000_000) - envelope.publishedAtMicros)
        Timer(label: "streamhub_event_bus_lag_seconds", factory: metrics).recordMicroseconds(lagMicros)
        Counter(label: "streamhub_events_received_total", dimensions: [("type", envelope.type)], factory: metrics).increment()
        if drops > 0 { countDrop("subscriber_behind", drops) }
        if gap > 0 {
            countDrop("backplane_gap", Int(clamping: gap))
            logger.warning("events from another instance were missed", metadata: ["origin": "\(envelope.origin)", "missed": "\(gap)"])
        }
    }

    private static func deliver(_ envelope: EventEnvelope, to subscribers: [Int: Subscriber]) -> Int {
        var drops = 0
        for subscriber in subscribers.values {
            if let types = subscriber.types, !types.contains(envelope.type) { continue }
            if case .dropped = subscriber.continuation.yield(envelope) { drops += 1 }
        }
        return drops
    }

    private func countDrop(_ reason: String, _ count: Int) {
        Counter(label: "streamhub_events_dropped_total", dimensions: [("reason", reason)], factory: metrics).increment(by: count)
    }
}
