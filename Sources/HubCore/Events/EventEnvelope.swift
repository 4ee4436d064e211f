import NIOCore

/// One event as it travels: its type, its fields already encoded as a JSON object, and where and when it
/// was published. Encoded once by the publisher; every subscriber and instance shares the same bytes.
public struct EventEnvelope: Sendable {
    /// The event type, e.g. `transcription`, `stream_updated`.
    public let type: String
    /// The event's fields as one UTF-8 JSON object (without the `event` key).
    public let payload: ByteBuffer
    /// The publishing instance's origin (instance id plus a per-boot suffix).
    public let origin: String
    /// Position in the publisher's stream: 1, 2, 3, … per origin.
    public let sequence: UInt64
    /// Microseconds since the Unix epoch when the event was published.
    public let publishedAtMicros: Int64
    /// Who may receive it (checked by the hub per audience group, travels with the event between instances).
    public let visibility: EventVisibility

    public init(type: String, payload: ByteBuffer, origin: String, sequence: UInt64, publishedAtMicros: Int64,
                visibility: EventVisibility = .admins) {
        self.type = type
        self.payload = payload
        self.origin = origin
        self.sequence = sequence
        self.publishedAtMicros = publishedAtMicros
        self.visibility = visibility
    }

    /// The payload as text.
    public var payloadString: String { String(buffer: payload) }
}

/// A typed event any module can publish on the ``EventBus``. Its coding keys are the wire field names.
public protocol HubEvent: Codable, Sendable {
    /// The `event` value of this type on the wire.
    static var eventType: String { get }
    /// Who may receive this event; admins only unless the type says otherwise.
    var visibility: EventVisibility { get }
}

extension HubEvent {
    public var visibility: EventVisibility { .admins }
}
