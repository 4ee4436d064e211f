import Foundation
import HubCore
import Registry

/// The spreadsheet bridge: streams as CSV in the Streamwall sheet's column layout, and CSV parsing for
/// imports (RFC 4180: quoted fields, doubled quotes, CRLF or LF, a UTF-8 BOM).
public enum StreamsCSV {
    /// The columns, in the sheet's order. Import matches headers case-insensitively and ignores unknown ones.
    public static let columns = [
        "Source", "Platform", "Link", "Status", "Title", "City", "State", "Notes", "Kind", "Orientation",
        "Posted By", "Added Date", "Last Checked", "Last Live", "Pinned", "Archived", "ID",
    ]

    /// One stream as a CSV row.
    static func row(_ stream: StreamRecord) -> String {
        let orientation = stream.orientation?.wallLabel
        let cells: [String?] = [
            stream.source, stream.platform.rawValue, stream.displayLink, stream.status.wallLabel, stream.title, stream.city, stream.state,
            stream.notes, stream.kind.rawValue, orientation, stream.postedBy, Timestamp.iso8601(stream.createdAt),
            stream.lastCheckedAt.map(Timestamp.iso8601), stream.lastLiveAt.map(Timestamp.iso8601),
            stream.isPinned ? "TRUE" : "FALSE", stream.isArchived ? "TRUE" : "FALSE", String(stream.id),
        ]
        return cells.map { cell($0 ?? "") }.joined(separator: ",")
    }

    static func document(_ streams: [StreamRecord]) -> String {
        var text = columns.map { cell($0) }.joined(separator: ",") + "\r\n"
        for stream in streams { text += row(stream) + "\r\n" }
        return text
    }

    /// A CSV cell: quoted when it must be, and with a leading `'` when a spreadsheet would read it as a
    /// formula (`=`, `+`, `-`, `@`, tab, CR), so an exported sheet cannot run anything.
    static func cell(_ value: String) -> String {
        var value = value
        if let first = value.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || value.hasPrefix(" ") || value.hasSuffix(" ") else {
            return value
        }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    enum ParseError: Error, CustomStringConvertible {
        case unterminatedQuote(line: Int)
        case tooManyRows(Int)
        case tooManyColumns(line: Int)

        var description: String {
            switch self {
            case .unterminatedQuote(let line): return "line \(line): a quoted field is not closed"
            case .tooManyRows(let limit): return "the file has more than \(limit) rows"
            case .tooManyColumns(let line): return "line \(line): more than 100 columns"
            }
        }
    }

    /// Parses CSV text into rows of fields, each with the line it starts on.
    static func parse(_ text: String, maxRows: Int = 20_000) throws -> [(line: Int, fields: [String])] {
        var rows: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var rowLine = 1
        var scalars = Substring(text).unicodeScalars[...]
        if scalars.first == "\u{FEFF}" { scalars = scalars.dropFirst() }
        var iterator = scalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func endRow() throws {
            fields.append(field)
            field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { rows.append((rowLine, fields)) }
            if rows.count > maxRows { throw ParseError.tooManyRows(maxRows) }
            fields = []
        }
        while let scalar = pending ?? iterator.next() {
            pending = nil
            if inQuotes {
                if scalar == "\"" {
                    let next = iterator.next()
                    if next == "\"" { field.unicodeScalars.append("\"") } else { inQuotes = false; pending = next }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty: inQuotes = true
            case ",":
                fields.append(field)
                field = ""
                if fields.count > 100 { throw ParseError.tooManyColumns(line: line) }
            case "\r":
                let next = iterator.next()
                if next != "\n" { pending = next }
                try endRow(); line += 1; rowLine = line
            case "\n":
                try endRow(); line += 1; rowLine = line
            default: field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes { throw ParseError.unterminatedQuote(line: rowLine) }
        if !field.isEmpty || !fields.isEmpty { try endRow() }
        return rows
    }
}
