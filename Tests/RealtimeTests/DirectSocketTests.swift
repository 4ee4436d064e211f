import NIOCore
import NIOEmbedded
import NIOPosix
@testable import Realtime
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The descriptor a hub connection writes to directly must be its own socket's, or none.
@Suite struct DirectSocketTests {
    /// Accepts one connection on loopback and answers both ends' channels.
    private func connectedPair() async throws -> (server: any Channel, client: any Channel, listener: any Channel) {
        let group = MultiThreadedEventLoopGroup.singleton
        let accepted = group.next().makePromise(of: (any Channel).self)
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                accepted.succeed(channel)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: group).connect(to: listener.localAddress!).get()
        return (try await accepted.futureResult.get(), client, listener)
    }

    @Test func findsTheAcceptedSocketAndWritesToItsPeer() async throws {
        let (server, client, listener) = try await connectedPair()
        defer { _ = client.close(); _ = server.close(); _ = listener.close() }
        let received = client.eventLoop.makePromise(of: ByteBuffer.self)
        try await client.pipeline.addHandler(FirstRead(promise: received))
        let fd = try await server.eventLoop.submit { DirectSocket.descriptor(of: server) }.get()
        let descriptor = try #require(fd)
        let written = try await server.eventLoop.submit {
            ByteBuffer(string: "straight to the socket").withUnsafeReadableBytes { DirectSocket.write(descriptor, $0) }
        }.get()
        #expect(written == 22)
        #expect(String(buffer: try await received.futureResult.get()) == "straight to the socket")
    }

    @Test func aChannelWithoutASocketHasNoDescriptor() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(DirectSocket.descriptor(of: channel) == nil)
    }

    @Test func aFullSocketTakesWhatFitsAndThenNothing() async throws {
        let (server, client, listener) = try await connectedPair()
        defer { _ = client.close(); _ = server.close(); _ = listener.close() }
        // The client never reads (autoRead off): the server's writes fill both sockets' buffers.
        try await client.setOption(ChannelOptions.autoRead, value: false).get()
        let fd = try await server.eventLoop.submit { DirectSocket.descriptor(of: server) }.get()
        let descriptor = try #require(fd)
        let chunk = ByteBuffer(repeating: 0x61, count: 1 << 20)
        let results = try await server.eventLoop.submit {
            var results: [Int?] = []
            while results.count < 64, results.last != 0 {
                results.append(chunk.withUnsafeReadableBytes { DirectSocket.write(descriptor, $0) })
            }
            return results
        }.get()
        #expect(results.last == 0, "a full non-blocking socket answers 0 bytes written, not an error")
        #expect(!results.contains(nil))
    }
}

private final class FirstRead: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<ByteBuffer>
    init(promise: EventLoopPromise<ByteBuffer>) { self.promise = promise }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        promise.succeed(unwrapInboundIn(data))
    }
}
