import Foundation
import NIOCore
import NIOPosix

/// The segment files of every recording, under `<data dir>/recordings/<id>/`. A file appears under its final
/// name only once it is complete (written as `<name>.part`, then renamed), so a crash leaves at most a
/// `.part` file, which ``reconcile(_:indexed:)`` removes.
public struct SegmentStore: Sendable {
    public let root: String
    let threadPool: NIOThreadPool
    /// The newest segments in memory (bounded), for serving the live edge without disk reads.
    let cache: SegmentCache

    public init(dataDirectory: String, cacheBytes: Int = 64 << 20, threadPool: NIOThreadPool = .singleton) {
        self.root = (dataDirectory as NSString).appendingPathComponent("recordings")
        self.threadPool = threadPool
        self.cache = SegmentCache(limit: cacheBytes)
    }

    public func directory(_ recording: String) -> String { root + "/" + recording }

    /// The path of a segment file; `nil` when `name` is not one the recorder writes (nothing can escape the
    /// recording's directory).
    public func path(_ recording: String, _ name: String) -> String? {
        guard RecordingID.isValid(recording), Self.isValidName(name) else { return nil }
        return directory(recording) + "/" + name
    }

    /// Names the recorder gives files: `0000000042.ts`, `.m4s`, `.mp4`, `.aac`, `init-0000000042.mp4`, and
    /// `preview.jpg`, `export-<hex>.mp4|ts`.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (5...64).contains(bytes.count), let dot = bytes.lastIndex(of: UInt8(ascii: ".")) else { return false }
        let stem = bytes[..<dot], ext = String(decoding: bytes[(dot + 1)...], as: UTF8.self)
        func digits(_ part: ArraySlice<UInt8>) -> Bool { part.count == 10 && part.allSatisfy { $0 >= 48 && $0 <= 57 } }
        if stem.starts(with: Array("init-".utf8)) { return ext == "mp4" && digits(stem.dropFirst(5)) }
        return digits(stem) && ["ts", "m4s", "mp4", "aac"].contains(ext)
    }

    public static func contentType(_ name: String) -> String {
        if name.hasSuffix(".ts") { return "video/mp2t" }
        if name.hasSuffix(".aac") { return "audio/aac" }
        if name.hasSuffix(".jpg") { return "image/jpeg" }
        return "video/mp4"
    }

    /// The file name for our sequence `sequence` of a source segment at `uri`.
    static func segmentName(_ sequence: Int, sourceURI: String, fragmented: Bool) -> String {
        let path = (URL(string: sourceURI)?.path ?? sourceURI).lowercased()
        let ext: String
        if path.hasSuffix(".aac") { ext = "aac" } else if fragmented || path.hasSuffix(".m4s") || path.hasSuffix(".mp4") { ext = "m4s" } else { ext = "ts" }
        return padded(sequence) + "." + ext
    }

    static func padded(_ value: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 10 - text.count)) + text
    }

    /// Writes `data` as `name` atomically (temporary file, then rename), off the event loops.
    public func write(_ data: ByteBuffer, recording: String, name: String) async throws {
        let directory = directory(recording)
        try await threadPool.runIfActive {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let final = directory + "/" + name, temporary = final + ".part"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StoreError.io("open \(temporary): \(String(cString: strerror(errno)))") }
            var failure: Int32 = 0
            data.withUnsafeReadableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 { if errno == EINTR { continue }; failure = errno; return }
                    offset += written
                }
            }
            close(fd)
            if failure != 0 {
                unlink(temporary)
                throw StoreError.io("write \(temporary): \(String(cString: strerror(failure)))")
            }
            guard rename(temporary, final) == 0 else {
                let why = String(cString: strerror(errno))
                unlink(temporary)
                throw StoreError.io("rename \(temporary): \(why)")
            }
        }
        cache.put(directory + "/" + name, data)
    }

    /// Deletes files of a recording (missing ones are fine).
    public func remove(_ names: [String], recording: String) async {
        let directory = directory(recording)
        for name in names { cache.remove(directory + "/" + name) }
        _ = try? await threadPool.runIfActive {
            for name in names { unlink(directory + "/" + name) }
        }
    }

    /// Makes files and index agree for a recording that is not running: removes `.part` leftovers and files
    /// the index does not list. Answers the indexed names whose files are missing (the caller drops those rows).
    func reconcile(_ recording: String, indexed: Set<String>) async throws -> (removedFiles: Int, missing: Set<String>) {
        let directory = directory(recording)
        return try await threadPool.runIfActive {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            var removed = 0
            var present = Set<String>()
            for name in names {
                if name.hasSuffix(".part") || (Self.isValidName(name) && !indexed.contains(name)) {
                    unlink(directory + "/" + name)
                    removed += 1
                } else if Self.isValidName(name) {
                    present.insert(name)
                }
            }
            return (removed, indexed.subtracting(present))
        }
    }

    /// Size of a regular file, or nil when there is none.
    static func size(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    enum StoreError: Error, CustomStringConvertible {
        case io(String)
        var description: String { switch self { case .io(let what): return what } }
    }
}
