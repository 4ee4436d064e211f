import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A WebSocket client made of a bare TCP socket with a tiny receive buffer that completes the handshake and
/// then reads only when told to: the slowest possible client, or one that falls behind and catches up.
public final class SlowSocketClient: @unchecked Sendable {
    // @unchecked: `descriptor` is set once in init and only closed in `close()`, called once by the test.
    private var descriptor: Int32

    public init(port: Int, path: String) throws {
        // A tiny receive buffer, set before connecting, so the server's writes back up quickly.
        descriptor = try connectLoopback(port: port, receiveBuffer: 2048)
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        _ = request.withCString { send(descriptor, $0, strlen($0), 0) }
        // Read the 101 response byte by byte so nothing after it is consumed.
        var response = [UInt8]()
        var byte: UInt8 = 0
        while !response.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard recv(descriptor, &byte, 1, 0) == 1 else { throw TestFailure("handshake failed") }
            response.append(byte)
        }
        guard String(decoding: response, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
            throw TestFailure("handshake refused: \(String(decoding: response, as: UTF8.self))")
        }
    }

    /// Drains whatever is buffered (without blocking) and answers whether the server has closed the socket.
    public func serverHasClosed() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    public func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor); descriptor = -1 }
    }

    /// Reads (blocking, up to `seconds` per read) until `count` text messages have arrived and answers
    /// them, skipping pings. Each frame must be whole and unfragmented, as the hub sends them.
    public func readTextMessages(_ count: Int, seconds: Int = 20) throws -> [String] {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var messages: [String] = []
        while messages.count < count {
            let head = try readExactly(2)
            guard head[0] & 0x80 != 0, head[1] & 0x80 == 0 else { throw TestFailure("a fragmented or masked frame: \(head)") }
            var length = Int(head[1] & 0x7F)
            if length == 126 { length = try readExactly(2).reduce(0) { $0 << 8 | Int($1) } }
            else if length == 127 { length = try readExactly(8).reduce(0) { $0 << 8 | Int($1) } }
            let payload = try readExactly(length)
            switch head[0] & 0x0F {
            case 0x1: messages.append(String(decoding: payload, as: UTF8.self))
            case 0x9: continue
            default: throw TestFailure("unexpected frame opcode \(head[0] & 0x0F)")
            }
        }
        return messages
    }

    private func readExactly(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = bytes[filled...].withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard got > 0 else { throw TestFailure("the socket ended or timed out after \(filled) of \(count) bytes") }
            filled += got
        }
        return bytes
    }
}

/// Sends `request` as raw bytes over a fresh TCP connection and answers everything the server writes until
/// it has sent one complete response or closed the connection (or `seconds` pass), for requests no HTTP client library would send.
public func rawHTTPExchange(port: Int, request: String, seconds: Int = 10) throws -> String {
    let descriptor = try connectLoopback(port: port)
    defer { _ = Glibc.close(descriptor) }
    var timeout = timeval(tv_sec: seconds, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let bytes = Array(request.utf8)
    var sent = 0
    while sent < bytes.count {
        let count = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if count <= 0 { break }  // the server may close before reading everything
        sent += count
    }
    var response = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(descriptor, &buffer, buffer.count, 0)
        if count <= 0 { break }
        response += buffer[0..<count]
        // Stop at the end of one complete response (headers plus Content-Length bytes).
        let text = String(decoding: response, as: UTF8.self)
        if let end = text.range(of: "\r\n\r\n") {
            let head = text[..<end.lowerBound].lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            if text.utf8.count - text[..<end.upperBound].utf8.count >= length { break }
        }
    }
    return String(decoding: response, as: UTF8.self)
}

/// Runs blocking work (socket calls) on a thread of its own, never on the cooperative pool: a test that
/// blocked a pool thread could starve the in-process server it is talking to (on 2 cores the pool has 2
/// threads), and the test would then wait for an answer that can never come.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

extension SlowSocketClient {
    /// Connects and completes the handshake off the cooperative pool.
    public static func open(port: Int, path: String) async throws -> SlowSocketClient {
        try await onOwnThread { try SlowSocketClient(port: port, path: path) }
    }
}

/// A blocking TCP socket connected to 127.0.0.1:`port` (optionally with a small receive buffer, set
/// before the connection so the window stays small).
func connectLoopback(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestFailure("socket() failed") }
    if var size = receiveBuffer {
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        _ = Glibc.close(descriptor)
        throw TestFailure("connect() failed")
    }
    return descriptor
}
