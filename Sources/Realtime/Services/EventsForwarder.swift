import HubCore
import NIOCore
import ServiceLifecycle

/// Forwards bus events to the WebSocket clients of one hub topic, each encoded once as
/// `{"event": type, …fields}`: every event (`WS /events`), or only the listed types.
public struct EventsForwarder: Service {
    let bus: EventBus
    let hub: WebSocketHub
    let topic: String
    let types: Set<String>?

    public init(bus: EventBus, hub: WebSocketHub, topic: String, types: Set<String>? = nil) {
        self.bus = bus
        self.hub = hub
        self.topic = topic
        self.types = types
    }

    public func run() async throws {
        for await envelope in bus.subscribe(types: types).cancelOnGracefulShutdown() {
            // `internal.*` events coordinate instances (a revoked token, say) and are never shown to clients.
            if types == nil && envelope.type.hasPrefix("internal.") { continue }
            hub.broadcast(frame: Self.frame(for: envelope), to: topic, visibility: envelope.visibility, eventType: envelope.type)
        }
    }

    /// Splices `"event":"<type>"` in front of the payload's fields without re-encoding them.
    public static func frame(for envelope: EventEnvelope) -> ByteBuffer {
        frame(type: envelope.type, payload: envelope.payload)
    }

    /// The same frame for an event that did not come through the bus (a replay, a snapshot).
    public static func frame(type: String, payload: ByteBuffer) -> ByteBuffer {
        var payload = payload
        var text = ByteBuffer()
        text.reserveCapacity(payload.readableBytes + type.utf8.count + 12)
        text.writeString("{\"event\":")
        text.writeString(JSONText.quote(type))
        while let byte = payload.getInteger(at: payload.readerIndex, as: UInt8.self), byte == 0x20 || byte == 0x0a || byte == 0x0d || byte == 0x09 {
            payload.moveReaderIndex(forwardBy: 1)
        }
        if payload.getInteger(at: payload.readerIndex, as: UInt8.self) == UInt8(ascii: "{") {
            payload.moveReaderIndex(forwardBy: 1)
            let rest = payload.readableBytesView.first { !($0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09) }
            if rest != UInt8(ascii: "}") { text.writeString(",") }
            text.writeBuffer(&payload)
        } else {
            text.writeString("}")
        }
        return WebSocketWire.textFrame(text)
    }
}
