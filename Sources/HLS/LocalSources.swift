import Foundation
import NIOCore
import Synchronization

/// HLS the server writes itself, read from disk under a scheme of its own: `program://NAME/live.m3u8` is
/// `<programs directory>/NAME/live.m3u8`. Only code in the server registers a scheme (the Stream Manager,
/// for its programs' output); users cannot name such a URL (the source guard refuses every scheme but
/// http and https), so a recording of one is only ever started by the server.
public final class LocalSources: Sendable {
    private let roots = Mutex<[String: String]>([:])

    public init() {}

    /// Serves `scheme://NAME/FILE` from `directory/NAME/FILE`.
    public func register(scheme: String, directory: String) {
        roots.withLock { $0[scheme.lowercased()] = directory }
    }

    /// The file a local URL names, or nil when it is not one (or names anything outside its directory).
    public func path(for url: String) -> String? {
        guard let separator = url.range(of: "://") else { return nil }
        let scheme = url[..<separator.lowerBound].lowercased()
        guard let root = roots.withLock({ $0[scheme] }) else { return nil }
        let parts = url[separator.upperBound...].split(separator: "?", maxSplits: 1)[0].split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        func safe(_ part: Substring, _ max: Int) -> Bool {
            !part.isEmpty && part.count <= max && part.first != "." && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        }
        guard safe(parts[0], 64), safe(parts[1], 64) else { return nil }
        return root + "/" + parts[0] + "/" + parts[1]
    }

    /// Reads a local URL's file (at most `limit` bytes): 200 with its bytes, or 404.
    func read(_ path: String, url: String, limit: Int) throws(GuardedFetcher.Failure) -> GuardedFetcher.Response {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), let size = attributes[.size] as? Int else {
            return GuardedFetcher.Response(status: 404, body: ByteBuffer(), url: url, contentType: nil)
        }
        guard size <= limit else { throw .tooLarge(limit) }
        guard let data = FileManager.default.contents(atPath: path) else {
            return GuardedFetcher.Response(status: 404, body: ByteBuffer(), url: url, contentType: nil)
        }
        return GuardedFetcher.Response(status: 200, body: ByteBuffer(bytes: data), url: url,
                                       contentType: path.hasSuffix(".m3u8") ? "application/vnd.apple.mpegurl" : "video/mp2t")
    }
}
