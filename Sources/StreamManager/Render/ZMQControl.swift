import NIOCore
import NIOPosix

/// Sends commands to ffmpeg's `zmq` filter: a minimal ZeroMQ REQ client (ZMTP 3.0, NULL security) over
/// loopback TCP. Each command is one request (`TARGET COMMAND ARG`); ffmpeg answers `<code> <text>`
/// (`0 Success`).
enum ZMQControl {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Connects to `127.0.0.1:port`, sends each message in turn and answers ffmpeg's replies.
    static func send(_ messages: [String], port: Int, timeout: Duration = .seconds(2)) async throws -> [String] {
        try await withThrowingTaskGroup(of: [String].self) { group in
            group.addTask { try await exchange(messages, port: port) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw Failure(description: "ffmpeg's control port did not answer within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next() ?? []
        }
    }

    private static func exchange(_ messages: [String], port: Int) async throws -> [String] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(1))
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var reader = Reader(inbound: inbound.makeAsyncIterator())
            try await outbound.write(greeting())
            let theirs = try await reader.take(64)
            guard theirs.getInteger(at: theirs.readerIndex, as: UInt8.self) == 0xFF, theirs.getInteger(at: theirs.readerIndex + 9, as: UInt8.self) == 0x7F else {
                throw Failure(description: "not a ZeroMQ peer")
            }
            try await outbound.write(readyCommand())
            _ = try await reader.frame()  // their READY
            var replies: [String] = []
            for message in messages {
                var request = ByteBuffer()
                request.writeBytes([0x01, 0x00])  // the REQ envelope's empty delimiter, more to come
                appendFrame(Array(message.utf8), flags: 0x00, to: &request)
                try await outbound.write(request)
                var reply = try await reader.frame()
                if reply.body.readableBytes == 0, reply.more { reply = try await reader.frame() }
                replies.append(String(buffer: reply.body))
            }
            return replies
        }
    }

    /// Signature, version 3.0, mechanism NULL, as-server 0, filler: 64 bytes.
    static func greeting() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes([0xFF, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7F, 0x03, 0x00])
        var mechanism = Array("NULL".utf8)
        mechanism += Array(repeating: 0, count: 20 - mechanism.count)
        buffer.writeBytes(mechanism)
        buffer.writeInteger(UInt8(0))
        buffer.writeBytes(Array(repeating: UInt8(0), count: 31))
        return buffer
    }

    /// The NULL mechanism's READY command, saying this is a REQ socket.
    static func readyCommand() -> ByteBuffer {
        var body: [UInt8] = [5] + Array("READY".utf8)
        let name = Array("Socket-Type".utf8), value = Array("REQ".utf8)
        body += [UInt8(name.count)] + name
        body += [0, 0, 0, UInt8(value.count)] + value
        var buffer = ByteBuffer()
        appendFrame(body, flags: 0x04, to: &buffer)
        return buffer
    }

    static func appendFrame(_ body: [UInt8], flags: UInt8, to buffer: inout ByteBuffer) {
        if body.count > 255 {
            buffer.writeInteger(flags | 0x02)
            buffer.writeInteger(UInt64(body.count))
        } else {
            buffer.writeInteger(flags)
            buffer.writeInteger(UInt8(body.count))
        }
        buffer.writeBytes(body)
    }

    /// Reads whole byte counts and frames from the connection.
    struct Reader {
        var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        var pending = ByteBuffer()

        mutating func take(_ count: Int) async throws -> ByteBuffer {
            while pending.readableBytes < count {
                guard var more = try await inbound.next() else { throw Failure(description: "ffmpeg closed the control connection") }
                pending.writeBuffer(&more)
            }
            return pending.readSlice(length: count)!
        }

        mutating func frame() async throws -> (body: ByteBuffer, more: Bool) {
            let head = try await take(1)
            let flags = head.getInteger(at: head.readerIndex, as: UInt8.self) ?? 0
            let length: Int
            if flags & 0x02 != 0 {
                let size = try await take(8)
                length = Int(size.getInteger(at: size.readerIndex, as: UInt64.self) ?? 0)
            } else {
                let size = try await take(1)
                length = Int(size.getInteger(at: size.readerIndex, as: UInt8.self) ?? 0)
            }
            guard length <= 1 << 20 else { throw Failure(description: "a control reply of \(length) bytes") }
            return (try await take(length), flags & 0x01 != 0)
        }
    }
}
