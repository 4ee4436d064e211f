/// Carries events between instances that share one database, so a client connected anywhere sees every
/// event. The in-process implementation carries nothing; the PostgreSQL one uses LISTEN/NOTIFY.
public protocol Backplane: Sendable {
    /// Whether events travel to other instances at all. When `false` the bus skips ``send(_:)``.
    var isDistributed: Bool { get }

    /// Sends envelopes published on this instance, in order. Throws when they could not be sent; the bus
    /// keeps them and tries again.
    func send(_ batch: [EventEnvelope]) async throws

    /// Runs until cancelled, handing every envelope received (other instances' and, possibly, this one's
    /// own) to `deliver` in the order received. Reconnects by itself after failures.
    func receive(_ deliver: @escaping @Sendable (EventEnvelope) async -> Void) async throws

    /// Releases connections; called once by the bus after its loops have ended.
    func shutdown() async
}

/// The embedded default: one instance, nothing to carry.
public struct InProcessBackplane: Backplane {
    public init() {}
    public var isDistributed: Bool { false }
    public func send(_ batch: [EventEnvelope]) async throws {}
    public func shutdown() async {}
    public func receive(_ deliver: @escaping @Sendable (EventEnvelope) async -> Void) async throws {
        // Nothing ever arrives; wait until the bus is cancelled.
        let (never, _) = AsyncStream<Never>.makeStream()
        for await _ in never {}
    }
}
