import Foundation
import HubCore
import SQLKit

/// A wall: a grid of cells, each showing one thing (a registry stream, a recording or an HLS URL), with the
/// audio focus on at most one cell. Cells are numbered from 1, row by row.
public struct Wall: Sendable, Equatable {
    public var name: String
    public var title: String?
    public var columns: Int
    public var rows: Int
    public var audioCell: Int?
    public var volume: Double
    public var version: Int64
    public var createdBy: String?
    public var createdAt: Double
    public var updatedAt: Double
    public var cells: [WallCell]

    public static let columns = "name, title, columns, rows, audio_cell, volume, version, created_by, created_at, updated_at"
    public static let maxSide = 10

    init(row: any SQLRow, cells: [WallCell]) throws {
        name = try row.decode(column: "name", as: String.self)
        title = try row.decode(column: "title", as: String?.self)
        columns = try row.decode(column: "columns", as: Int.self)
        rows = try row.decode(column: "rows", as: Int.self)
        audioCell = try row.decode(column: "audio_cell", as: Int?.self)
        volume = try row.decode(column: "volume", as: Double.self)
        version = try row.decode(column: "version", as: Int64.self)
        createdBy = try row.decode(column: "created_by", as: String?.self)
        createdAt = try row.decode(column: "created_at", as: Double.self)
        updatedAt = try row.decode(column: "updated_at", as: Double.self)
        self.cells = cells
    }

    /// Wall names are what URLs carry: 1–40 lowercase letters, digits and '-', starting with a letter or digit.
    public static func isValidName(_ name: String) -> Bool {
        (1...40).contains(name.utf8.count) && name.utf8.first.map { $0 != UInt8(ascii: "-") } == true
            && name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: "-") }
    }

    public var cellCount: Int { columns * rows }

    /// The registry streams the wall shows or falls back to.
    public var streamIDs: Set<Int64> { Set(cells.flatMap { [$0.streamID, $0.fallbackStreamID].compactMap { $0 } }) }

    /// The recordings the wall shows.
    public var recordingIDs: Set<String> { Set(cells.compactMap(\.recordingID)) }

    /// The wall as the API and `wall_changed` events show it: every cell of the grid, empty ones as `null`
    /// content, so a client can draw the grid from this object alone.
    public var json: String {
        var byNumber: [Int: WallCell] = [:]
        for cell in cells { byNumber[cell.cell] = cell }
        let grid = (1...max(1, cellCount)).map { number in (byNumber[number] ?? WallCell(cell: number)).json }
        return JSONText.object([
            ("name", .string(name)), ("title", title.map(JSONText.Value.string) ?? .null),
            ("columns", .int(columns)), ("rows", .int(rows)),
            ("audio", .raw(JSONText.object([("cell", audioCell.map { .int($0) } ?? .null), ("volume", .double(volume))]))),
            ("version", .int(Int(version))), ("created_by", createdBy.map(JSONText.Value.string) ?? .null),
            ("created_at", .string(Timestamp.iso8601(createdAt))), ("updated_at", .string(Timestamp.iso8601(updatedAt))),
            ("cells", .raw("[" + grid.joined(separator: ",") + "]")),
            ("urls", .raw(JSONText.object([("display", .string("/wall/\(name)")), ("control", .string("/wall/\(name)/control"))]))),
        ])
    }
}

/// What one cell shows.
public struct WallCell: Sendable, Equatable {
    public var cell: Int
    public var streamID: Int64?
    public var recordingID: String?
    public var url: String?
    public var fallbackStreamID: Int64?
    public var rewindSeconds: Int?
    public var blurred = false
    public var rotation = 0
    public var updatedBy: String?
    public var updatedAt: Double?

    public static let columns = "cell, stream_id, recording_id, url, fallback_stream_id, rewind_seconds, blurred, rotation, updated_by, updated_at"

    public init(cell: Int) {
        self.cell = cell
    }

    init(row: any SQLRow) throws {
        cell = try row.decode(column: "cell", as: Int.self)
        streamID = try row.decode(column: "stream_id", as: Int64?.self)
        recordingID = try row.decode(column: "recording_id", as: String?.self)
        url = try row.decode(column: "url", as: String?.self)
        fallbackStreamID = try row.decode(column: "fallback_stream_id", as: Int64?.self)
        rewindSeconds = try row.decode(column: "rewind_seconds", as: Int?.self)
        blurred = try row.decode(column: "blurred", as: Bool.self)
        rotation = try row.decode(column: "rotation", as: Int.self)
        updatedBy = try row.decode(column: "updated_by", as: String?.self)
        updatedAt = try row.decode(column: "updated_at", as: Double?.self)
    }

    public var isEmpty: Bool { streamID == nil && recordingID == nil && url == nil }

    public var json: String {
        JSONText.object([
            ("cell", .int(cell)), ("stream_id", streamID.map { .int(Int($0)) } ?? .null),
            ("recording_id", recordingID.map(JSONText.Value.string) ?? .null), ("url", url.map(JSONText.Value.string) ?? .null),
            ("fallback_stream_id", fallbackStreamID.map { .int(Int($0)) } ?? .null),
            ("rewind_seconds", rewindSeconds.map { .int($0) } ?? .null), ("blurred", .bool(blurred)), ("rotation", .int(rotation)),
            ("updated_by", updatedBy.map(JSONText.Value.string) ?? .null),
            ("updated_at", Timestamp.jsonValue(updatedAt)),
        ])
    }
}
