import Foundation

/// Builds small JSON texts with keys in a fixed order, without a round trip through `JSONEncoder`.
public enum JSONText {
    public enum Value: Sendable {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)
        case null
        case strings([String])
        case raw(String)
    }

    public static func object(_ fields: [(String, Value)]) -> String {
        var text = "{"
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { text += "," }
            text += quote(key) + ":" + render(value)
        }
        return text + "}"
    }

    public static func render(_ value: Value) -> String {
        switch value {
        case .string(let string): return quote(string)
        case .int(let int): return String(int)
        case .double(let double): return double.isFinite ? "\(double)" : "null"
        case .bool(let bool): return bool ? "true" : "false"
        case .null: return "null"
        case .strings(let strings): return "[" + strings.map(quote).joined(separator: ",") + "]"
        case .raw(let raw): return raw
        }
    }

    /// A JSON string literal for `string`, escaping quotes, backslashes and control characters.
    public static func quote(_ string: String) -> String {
        var out = "\""
        out.reserveCapacity(string.utf8.count + 2)
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
