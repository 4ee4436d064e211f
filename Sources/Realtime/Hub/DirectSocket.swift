#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// The socket descriptor under a hub connection's channel, so a broadcast can hand a frame to the kernel
/// with one `write(2)` instead of NIO's general write path (promise bookkeeping, pending-write queue,
/// writability accounting and several dynamic checks per call: three quarters of a frame's user-space
/// instructions). NIO keeps the descriptor private; it is read reflectively once per connection and
/// trusted only when the socket it names has the channel's own local and peer address.
///
/// Safety rests on NIO's close: `close0` closes the descriptor and marks the channel inactive before it
/// calls out to any code, all on the channel's event loop. A direct write runs on that loop and only while
/// the channel is active, so the descriptor it uses can neither be closed nor reused by another socket.
enum DirectSocket {
    /// The channel's socket descriptor, or `nil` when it cannot be found or does not check out (a NIO
    /// version that stores it differently, a socket that is not TCP over IP): the connection then writes
    /// through NIO as usual.
    static func descriptor(of channel: any Channel) -> CInt? {
        guard let socket = field("socket", of: channel),
              let fd = field("descriptor", of: socket) as? CInt, fd >= 0,
              let local = channel.localAddress, let remote = channel.remoteAddress,
              matches(fd, local: local, remote: remote)
        else { return nil }
        return fd
    }

    /// Writes as much of `bytes` as the socket takes now. Answers how many bytes were written (0 when the
    /// socket's buffer is full) or `nil` on an error (NIO then meets it on its own write and closes).
    static func write(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> Int? {
        while true {
            #if canImport(Darwin)
            let written = Darwin.write(fd, bytes.baseAddress, bytes.count)
            #elseif canImport(Musl)
            let written = Musl.write(fd, bytes.baseAddress, bytes.count)
            #else
            let written = Glibc.write(fd, bytes.baseAddress, bytes.count)
            #endif
            if written >= 0 { return written }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: return nil
            }
        }
    }

    /// A stored property of `value` or of one of its superclasses, by name.
    private static func field(_ name: String, of value: Any) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: value)
        while let current = mirror {
            if let child = current.children.first(where: { $0.label == name }) { return child.value }
            mirror = current.superclassMirror
        }
        return nil
    }

    /// Whether `fd` is a connected IP socket with exactly these two addresses (a 4-tuple names one socket).
    private static func matches(_ fd: CInt, local: SocketAddress, remote: SocketAddress) -> Bool {
        same(local, as: fd, getsockname) && same(remote, as: fd, getpeername)
    }

    private static func same(_ address: SocketAddress, as fd: CInt,
                             _ get: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let got = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { get(fd, $0, &length) == 0 }
        }
        guard got else { return false }
        switch address {
        case .v4(let expected) where Int32(storage.ss_family) == AF_INET:
            let found = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            return found.sin_port == expected.address.sin_port && found.sin_addr.s_addr == expected.address.sin_addr.s_addr
        case .v6(let expected) where Int32(storage.ss_family) == AF_INET6:
            let found = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            var wanted = expected.address.sin6_addr
            var got = found.sin6_addr
            return found.sin6_port == expected.address.sin6_port
                && withUnsafeBytes(of: &got, { a in withUnsafeBytes(of: &wanted) { b in a.elementsEqual(b) } })
        default:
            return false
        }
    }
}
