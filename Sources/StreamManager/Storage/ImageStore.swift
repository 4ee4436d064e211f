import Crypto
import Foundation
import HubCore
import HubStore
import SQLKit

/// Uploaded images (`program_images`): metadata and bytes in the database, so any instance renders any
/// image; each renderer keeps a copy on disk (``file(_:in:)``), which never goes stale since an image never
/// changes after upload.
public struct ImageStore: Sendable {
    let database: HubDatabase
    /// ffmpeg, to decode every upload once before it is accepted (`nil`: the structural checks only).
    let ffmpeg: String?

    public func list() async throws -> [ProgramImage] {
        try await database.sql.raw("SELECT \(unsafeRaw: ProgramImage.columns) FROM program_images ORDER BY created_at DESC, id").all()
            .map(ProgramImage.init(row:))
    }

    public func get(_ id: String) async throws -> ProgramImage {
        guard ProgramImage.isValidID(id),
              let row = try await database.sql.raw("SELECT \(unsafeRaw: ProgramImage.columns) FROM program_images WHERE id = \(bind: id)").first() else {
            throw Self.notFound(id)
        }
        return try ProgramImage(row: row)
    }

    public func exists(_ id: String) async throws -> Bool {
        guard ProgramImage.isValidID(id) else { return false }
        return try await database.sql.raw("SELECT id FROM program_images WHERE id = \(bind: id)").first() != nil
    }

    public func content(_ id: String) async throws -> (ProgramImage, Data) {
        guard ProgramImage.isValidID(id),
              let row = try await database.sql.raw("SELECT \(unsafeRaw: ProgramImage.columns), data FROM program_images WHERE id = \(bind: id)").first() else {
            throw Self.notFound(id)
        }
        return (try ProgramImage(row: row), try row.decode(column: "data", as: Data.self))
    }

    static func notFound(_ id: String) -> HubError { HubError.notFound("no image '\(id.prefix(40))'") }

    /// Validates and stores an upload. The same bytes uploaded again answer the stored image (`created` false).
    public func create(_ bytes: [UInt8], claimed: ProgramImage.Format?, name: String?, by actor: String) async throws -> (image: ProgramImage, created: Bool) {
        let header: ImageInspector.Header
        do {
            header = try ImageInspector.inspect(bytes)
        } catch {
            throw HubError(.unprocessableContent, code: "invalid_image", message: error.description)
        }
        if let claimed, claimed != header.format {
            throw HubError(.unprocessableContent, code: "invalid_image",
                           message: "the body is a \(header.format.rawValue.uppercased()) but Content-Type says \(claimed.contentType)")
        }
        try await decodes(bytes, header)
        let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        let now = Timestamp.now()
        var generator = SystemRandomNumberGenerator()
        let id = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let kind = database.kind
        return try await database.transaction { db in
            if kind == .postgres { try await db.raw("LOCK TABLE program_images IN SHARE ROW EXCLUSIVE MODE").run() }
            if let row = try await db.raw("SELECT \(unsafeRaw: ProgramImage.columns) FROM program_images WHERE sha256 = \(bind: digest)").first() {
                return (try ProgramImage(row: row), false)
            }
            let count = try await db.raw("SELECT COUNT(*) AS n FROM program_images").first()?.decode(column: "n", as: Int.self) ?? 0
            guard count < ProgramImage.maxCount else {
                throw HubError(.conflict, code: "too_many_images", message: "at most \(ProgramImage.maxCount) images are kept; delete one first")
            }
            try await db.raw("""
                INSERT INTO program_images (id, name, format, width, height, size, sha256, data, created_by, created_at)
                VALUES (\(bind: id), \(bind: name), \(bind: header.format.rawValue), \(bind: header.width), \(bind: header.height), \(bind: bytes.count),
                        \(bind: digest), \(bind: Data(bytes)), \(bind: actor), \(bind: now))
                """).run()
            let image = ProgramImage(id: id, name: name, format: header.format, width: header.width, height: header.height, size: bytes.count,
                                     sha256: digest, createdBy: actor, createdAt: now)
            return (image, true)
        }
    }

    /// Deletes an image no layer shows (409 `image_in_use` naming the programs that do).
    public func delete(_ id: String) async throws {
        let kind = database.kind
        try await database.transaction { db in
            if kind == .postgres { try await db.raw("LOCK TABLE program_images IN SHARE ROW EXCLUSIVE MODE").run() }
            guard ProgramImage.isValidID(id), try await db.raw("SELECT id FROM program_images WHERE id = \(bind: id)").first() != nil else {
                throw Self.notFound(id)
            }
            let users = try await db.raw("SELECT DISTINCT program FROM program_layers WHERE image_id = \(bind: id) ORDER BY program").all()
                .map { try $0.decode(column: "program", as: String.self) }
            guard users.isEmpty else {
                throw HubError(.conflict, code: "image_in_use", message: "the image is shown by program(s) " + users.joined(separator: ", ") + "; remove those layers first")
            }
            try await db.raw("DELETE FROM program_images WHERE id = \(bind: id)").run()
        }
    }

    /// The image as a file in `directory` (written from the database once), or `nil` when it is gone.
    func file(_ id: String, in directory: String) async -> String? {
        guard ProgramImage.isValidID(id) else { return nil }
        for format in [ProgramImage.Format.png, .jpeg] {
            let path = "\(directory)/\(id).\(format.fileExtension)"
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        guard let (image, data) = try? await content(id) else { return nil }
        let path = "\(directory)/\(id).\(image.format.fileExtension)"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            return nil
        }
        return path
    }

    /// Decodes the picture once with ffmpeg (a file can pass the structural checks and still not decode).
    private func decodes(_ bytes: [UInt8], _ header: ImageInspector.Header) async throws {
        guard let ffmpeg else { return }
        let path = NSTemporaryDirectory() + "streamhub-upload-\(UUID().uuidString).\(header.format.fileExtension)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try await ChildProcess.run(ffmpeg, ["-hide_banner", "-nostdin", "-v", "error", "-xerror", "-err_detect", "explode",
                                                         "-i", path, "-frames:v", "1", "-f", "null", "-"], timeout: .seconds(15))
        guard !result.timedOut, result.status == 0, result.stderr.isEmpty else {
            let why = String(decoding: result.stderr.prefix(300), as: UTF8.self).split(separator: "\n").first.map(String.init) ?? "it does not decode"
            throw HubError(.unprocessableContent, code: "invalid_image", message: "the picture does not decode: " + why)
        }
    }
}
