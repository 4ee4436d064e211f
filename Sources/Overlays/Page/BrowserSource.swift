import Foundation
import HubCore
import SQLKit

/// One source on a community's overlay page.
public struct BrowserSource: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case captions, web, stream, recording }

    /// How a source looks; every value is validated so it can be written into CSS safely.
    public struct Style: Sendable, Equatable, Codable {
        public var font: String?
        public var size: Int?
        public var color: String?
        public var background: String?
        public var maxLines: Int?
        public var fadeSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case font, size, color, background, maxLines = "max_lines", fadeSeconds = "fade_seconds"
        }

        static func isSafeColor(_ value: String) -> Bool {
            let v = value.lowercased()
            if v.hasPrefix("#") { return [4, 5, 7, 9].contains(v.count) && v.dropFirst().allSatisfy(\.isHexDigit) }
            if v.hasPrefix("rgb(") || v.hasPrefix("rgba(") {
                return v.hasSuffix(")") && v.count <= 40 && v.allSatisfy { $0.isNumber || "rgba(),. %".contains($0) }
            }
            return (1...30).contains(v.count) && v.allSatisfy { $0.isLetter && $0.isASCII }
        }

        func validate() throws {
            if let font, !(1...60).contains(font.count) || !font.allSatisfy({ $0.isLetter || $0.isNumber || " -_,".contains($0) }) {
                throw HubError.validation("style.font must be 1-60 letters, digits, spaces, '-', '_' or ','")
            }
            if let size, !(8...200).contains(size) { throw HubError.validation("style.size must be 8 to 200 (pixels)") }
            for (name, value) in [("color", color), ("background", background)] {
                if let value, !Self.isSafeColor(value) { throw HubError.validation("style.\(name) must be a colour: #rgb, #rrggbb, rgb(…), rgba(…) or a name") }
            }
            if let maxLines, !(1...20).contains(maxLines) { throw HubError.validation("style.max_lines must be 1 to 20") }
            if let fadeSeconds, !(0...600).contains(fadeSeconds) { throw HubError.validation("style.fade_seconds must be 0 to 600") }
        }

        var json: String {
            (try? String(decoding: JSONEncoder().encode(self), as: UTF8.self)) ?? "{}"
        }
    }

    public var id: Int64
    public var communityID: Int64
    public var name: String
    public var kind: Kind
    public var url: String?
    public var streamID: Int64?
    public var recordingID: String?
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public var z: Int
    public var visible: Bool
    public var style: Style

    static let columns = "id, community_id, name, kind, url, stream_id, recording_id, x, y, width, height, z, visible, style"

    var json: String {
        JSONText.object([
            ("id", .int(Int(id))), ("community_id", .int(Int(communityID))), ("name", .string(name)), ("kind", .string(kind.rawValue)),
            ("url", url.map(JSONText.Value.string) ?? .null), ("stream_id", streamID.map { .int(Int($0)) } ?? .null),
            ("recording_id", recordingID.map(JSONText.Value.string) ?? .null),
            ("x", .int(x)), ("y", .int(y)), ("width", .int(width)), ("height", .int(height)), ("z", .int(z)), ("visible", .bool(visible)),
            ("style", .raw(style.json)),
        ])
    }
}

extension BrowserSource {
    init(row: any SQLRow) throws {
        id = try row.decode(column: "id", as: Int64.self)
        communityID = try row.decode(column: "community_id", as: Int64.self)
        name = try row.decode(column: "name", as: String.self)
        kind = Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .web
        url = try row.decode(column: "url", as: String?.self)
        streamID = try row.decode(column: "stream_id", as: Int64?.self)
        recordingID = try row.decode(column: "recording_id", as: String?.self)
        x = try row.decode(column: "x", as: Int.self)
        y = try row.decode(column: "y", as: Int.self)
        width = try row.decode(column: "width", as: Int.self)
        height = try row.decode(column: "height", as: Int.self)
        z = try row.decode(column: "z", as: Int.self)
        visible = try row.decode(column: "visible", as: Bool.self)
        style = (try? JSONDecoder().decode(Style.self, from: Data(try row.decode(column: "style", as: String.self).utf8))) ?? Style()
    }
}
