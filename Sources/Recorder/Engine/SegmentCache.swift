import DequeModule
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The newest segment files in memory, bounded in bytes: the recorder puts each segment it writes (the live
/// edge is what players ask for), reads fill it on a miss, and the oldest entries go first. Segments never
/// change once written, so an entry is valid until retention removes the file.
final class SegmentCache: Sendable {
    struct State {
        var entries: [String: (data: ByteBuffer, generation: UInt64)] = [:]
        var order = Deque<(path: String, generation: UInt64)>()
        var bytes = 0
        var generation: UInt64 = 0
    }

    let limit: Int
    /// Files larger than this are streamed from disk, never cached.
    let itemLimit: Int
    private let state = Mutex(State())

    init(limit: Int, itemLimit: Int = 8 << 20) {
        self.limit = limit
        self.itemLimit = min(itemLimit, limit)
    }

    var bytes: Int { state.withLock { $0.bytes } }

    func get(_ path: String) -> ByteBuffer? {
        state.withLock { $0.entries[path]?.data }
    }

    func put(_ path: String, _ data: ByteBuffer) {
        guard data.readableBytes <= itemLimit, limit > 0 else { return }
        state.withLock { state in
            if let old = state.entries[path] { state.bytes -= old.data.readableBytes }
            state.generation += 1
            state.entries[path] = (data, state.generation)
            state.order.append((path, state.generation))
            state.bytes += data.readableBytes
            while state.bytes > limit, let oldest = state.order.popFirst() {
                if let entry = state.entries[oldest.path], entry.generation == oldest.generation {
                    state.entries[oldest.path] = nil
                    state.bytes -= entry.data.readableBytes
                }
            }
            // Stale order entries (replaced or removed paths) are dropped as they reach the front.
            if state.order.count > 4 * max(16, state.entries.count) {
                state.order = Deque(state.order.filter { state.entries[$0.path]?.generation == $0.generation })
            }
        }
    }

    func remove(_ path: String) {
        state.withLock { state in
            if let old = state.entries.removeValue(forKey: path) { state.bytes -= old.data.readableBytes }
        }
    }

    /// The whole file, from the cache or read in one go (and cached) when it is small enough; `nil` when it
    /// is larger (stream it instead). Throws when the file does not exist.
    func load(_ path: String, threadPool: NIOThreadPool = .singleton) async throws -> ByteBuffer? {
        if let hit = get(path) { return hit }
        let itemLimit = itemLimit
        let data: ByteBuffer? = try await threadPool.runIfActive {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CacheError.missing }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw CacheError.missing }
            let size = Int(info.st_size)
            guard size <= itemLimit else { return nil }
            var buffer = ByteBufferAllocator().buffer(capacity: size)
            var failed = false
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { pointer in
                var offset = 0
                while offset < size {
                    let count = pread(fd, pointer.baseAddress! + offset, size - offset, off_t(offset))
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { failed = count < 0; break }
                    offset += count
                }
                return offset
            }
            if failed { throw CacheError.missing }
            return buffer
        }
        if let data { put(path, data) }
        return data
    }

    enum CacheError: Error { case missing }
}
