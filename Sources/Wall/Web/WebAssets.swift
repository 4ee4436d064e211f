import Crypto
import Foundation
import HubCore
import NIOCore

/// The pages' files (HTML, CSS, JavaScript modules), read once at start-up from the module's resources and
/// served from memory with a content hash as ETag. No build step: what is in `Web/Assets` is what runs.
public struct WebAssets: Sendable {
    public struct Asset: Sendable {
        public let body: ByteBuffer
        public let contentType: String
        public let etag: String
    }

    public let files: [String: Asset]

    /// Loads every file of the resource bundle's `Assets` folder; fails when the folder is missing (the
    /// binary was copied without `StreamHub_Wall.resources`).
    public static func load() throws -> WebAssets {
        guard let folder = Bundle.module.url(forResource: "Assets", withExtension: nil) else {
            throw HubError.unavailable("the web pages' files are missing: keep StreamHub_Wall.resources next to the streamhub binary")
        }
        var files: [String: Asset] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where !name.hasPrefix(".") {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            let digest = SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined()
            files[name] = Asset(body: ByteBuffer(bytes: data), contentType: contentType(name), etag: "\"\(digest)\"")
        }
        return WebAssets(files: files)
    }

    static func contentType(_ name: String) -> String {
        switch name.split(separator: ".").last ?? "" {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        default: "application/octet-stream"
        }
    }
}
