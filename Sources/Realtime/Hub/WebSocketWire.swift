import NIOCore

/// Encodes complete server-to-client WebSocket frames (RFC 6455 §5.2: FIN set, unmasked). A broadcast
/// encodes its frame once and hands the same bytes to every connection.
public enum WebSocketWire {
    /// A complete text frame carrying `payload` (which must be UTF-8).
    public static func textFrame(_ payload: ByteBuffer) -> ByteBuffer {
        frame(opcode: 0x1, payload: payload)
    }

    /// A complete binary frame carrying `payload`.
    public static func binaryFrame(_ payload: ByteBuffer) -> ByteBuffer {
        frame(opcode: 0x2, payload: payload)
    }

    /// A ping frame with a fixed payload (the hub pings every client with the same bytes).
    public static let pingFrame = frame(opcode: 0x9, payload: ByteBuffer(string: "streamhub"))

    static func frame(opcode: UInt8, payload: ByteBuffer) -> ByteBuffer {
        let length = payload.readableBytes
        var buffer = ByteBufferAllocator().buffer(capacity: length + 10)
        buffer.writeInteger(0x80 | opcode)
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
        var payload = payload
        buffer.writeBuffer(&payload)
        return buffer
    }
}
