import Foundation
import HubCore
import SQLKit

/// An uploaded picture an image layer shows: a PNG or JPEG, validated on the way in and kept in the database
/// (so every instance can render it), never changed after upload.
public struct ProgramImage: Sendable, Equatable {
    public enum Format: String, Sendable {
        case png, jpeg

        public var contentType: String { self == .png ? "image/png" : "image/jpeg" }
        var fileExtension: String { self == .png ? "png" : "jpg" }
    }

    /// 32 hex digits (128 random bits).
    public var id: String
    public var name: String?
    public var format: Format
    public var width: Int
    public var height: Int
    public var size: Int
    /// SHA-256 of the bytes, hex: the content's ETag, and how a second upload of the same file finds the first.
    public var sha256: String
    public var createdBy: String?
    public var createdAt: Double

    /// Largest upload accepted.
    public static let maxBytes = 4 << 20
    /// Largest side, in pixels (a decoded 4096×4096 RGBA picture is 64 MiB).
    public static let maxSide = 4096
    /// Images kept at once (every image stays in the database until deleted).
    public static let maxCount = 500

    static let columns = "id, name, format, width, height, size, sha256, created_by, created_at"

    static func isValidID(_ id: String) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    var json: String {
        JSONText.object([
            ("id", .string(id)),
            ("name", name.map(JSONText.Value.string) ?? .null),
            ("content_type", .string(format.contentType)),
            ("width", .int(width)), ("height", .int(height)), ("size", .int(size)),
            ("sha256", .string(sha256)),
            ("created_by", createdBy.map(JSONText.Value.string) ?? .null),
            ("created_at", .string(Timestamp.iso8601(createdAt))),
            ("url", .string("/api/v1/images/\(id)/content")),
        ])
    }
}

extension ProgramImage {
    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: String.self)
        name = try row.decode(column: "name", as: String?.self)
        format = Format(rawValue: try row.decode(column: "format", as: String.self)) ?? .png
        width = try row.decode(column: "width", as: Int.self)
        height = try row.decode(column: "height", as: Int.self)
        size = try row.decode(column: "size", as: Int.self)
        sha256 = try row.decode(column: "sha256", as: String.self)
        createdBy = try row.decode(column: "created_by", as: String?.self)
        createdAt = try row.decode(column: "created_at", as: Double.self)
    }
}

/// Reads what an upload claims to be and checks its structure, without decoding the pixels: a PNG's chunks
/// (each CRC, IHDR first, IDAT present, IEND last with nothing after it, no animation) or a JPEG's markers
/// (a frame header before the scan, the end-of-image marker last). The pixels are decoded afterwards by
/// ffmpeg where it is installed (``ImageStore``).
public enum ImageInspector {
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public struct Header: Equatable, Sendable {
        public var format: ProgramImage.Format
        public var width: Int
        public var height: Int
    }

    public static func inspect(_ bytes: [UInt8]) throws(Problem) -> Header {
        let header: Header
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            header = try png(bytes)
        } else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            header = try jpeg(bytes)
        } else {
            throw Problem("the file is neither a PNG nor a JPEG")
        }
        guard (1...ProgramImage.maxSide).contains(header.width), (1...ProgramImage.maxSide).contains(header.height) else {
            throw Problem("the picture is \(header.width)x\(header.height); each side must be from 1 to \(ProgramImage.maxSide) pixels")
        }
        return header
    }

    static func be32(_ bytes: [UInt8], _ at: Int) -> Int {
        Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
    }

    static func be16(_ bytes: [UInt8], _ at: Int) -> Int {
        Int(bytes[at]) << 8 | Int(bytes[at + 1])
    }

    private static func png(_ bytes: [UInt8]) throws(Problem) -> Header {
        var at = 8
        var width = 0, height = 0
        var sawHeader = false, sawData = false, chunks = 0
        while true {
            guard at + 12 <= bytes.count else { throw Problem("the PNG is truncated (no IEND chunk)") }
            let length = be32(bytes, at)
            let type = String(decoding: bytes[(at + 4)..<(at + 8)], as: UTF8.self)
            guard length <= bytes.count - at - 12 else { throw Problem("the PNG is truncated (chunk \(type) runs past the end)") }
            let crcAt = at + 8 + length
            guard crc32(bytes[(at + 4)..<crcAt]) == UInt32(be32(bytes, crcAt)) else { throw Problem("the PNG is damaged (bad CRC in chunk \(type))") }
            chunks += 1
            guard chunks <= 10_000 else { throw Problem("the PNG has too many chunks") }
            if !sawHeader {
                guard type == "IHDR", length == 13 else { throw Problem("the PNG does not start with its IHDR chunk") }
                width = be32(bytes, at + 8)
                height = be32(bytes, at + 12)
                let depth = bytes[at + 16], colour = bytes[at + 17]
                let depths: [UInt8: [UInt8]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
                guard depths[colour]?.contains(depth) == true, bytes[at + 18] == 0, bytes[at + 19] == 0, bytes[at + 20] <= 1 else {
                    throw Problem("the PNG's IHDR is not valid")
                }
                sawHeader = true
            } else {
                switch type {
                case "IHDR": throw Problem("the PNG has two IHDR chunks")
                case "acTL", "fcTL", "fdAT": throw Problem("animated PNGs are not supported; upload a still picture")
                case "IDAT": sawData = true
                case "IEND":
                    guard sawData else { throw Problem("the PNG has no image data") }
                    guard crcAt + 4 == bytes.count else { throw Problem("the PNG has data after its end") }
                    return Header(format: .png, width: width, height: height)
                default: break
                }
            }
            at = crcAt + 4
        }
    }

    private static func jpeg(_ bytes: [UInt8]) throws(Problem) -> Header {
        var at = 2
        var frame: (width: Int, height: Int)?
        while true {
            guard at + 4 <= bytes.count, bytes[at] == 0xFF else { throw Problem("the JPEG is damaged (no marker where one belongs)") }
            let marker = bytes[at + 1]
            if marker == 0xFF { at += 1; continue }  // fill byte
            let length = be16(bytes, at + 2)
            guard length >= 2, at + 2 + length <= bytes.count else { throw Problem("the JPEG is truncated") }
            switch marker {
            case 0xC0...0xC3, 0xC5...0xC7, 0xC9...0xCB, 0xCD...0xCF:
                guard length >= 8 else { throw Problem("the JPEG's frame header is too short") }
                frame = (be16(bytes, at + 7), be16(bytes, at + 5))
                guard bytes[at + 4] == 8, [1, 3, 4].contains(bytes[at + 9]) else {
                    throw Problem("the JPEG must have 8-bit samples and 1, 3 or 4 components")
                }
            case 0xDA:
                guard let frame else { throw Problem("the JPEG has no frame header before its image data") }
                // Entropy-coded data (and any further scans of a progressive JPEG) run to the end-of-image
                // marker, which must close the file.
                guard bytes.count >= at + 2 + length + 2, bytes[bytes.count - 2] == 0xFF, bytes[bytes.count - 1] == 0xD9 else {
                    throw Problem("the JPEG is truncated (no end-of-image marker at its end)")
                }
                return Header(format: .jpeg, width: frame.width, height: frame.height)
            case 0xD9:
                throw Problem("the JPEG ends before its image data")
            default:
                break
            }
            at += 2 + length
        }
    }

    private static let crcTable: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    /// CRC-32 (ISO 3309, as PNG uses it).
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
