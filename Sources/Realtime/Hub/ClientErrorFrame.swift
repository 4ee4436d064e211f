import HubCore
import NIOCore

/// `{"event":"error","code":…,"message":…}`: the answer to a client message the server cannot use. The
/// connection stays open.
public enum ClientErrorFrame {
    public static func make(code: String, message: String) -> ByteBuffer {
        WebSocketWire.textFrame(ByteBuffer(string: JSONText.object([("event", .string("error")), ("code", .string(code)), ("message", .string(message))])))
    }
}
