import Foundation

/// Timestamps are stored as seconds since 1970 (a double, on both backends) and written as ISO 8601 in UTC
/// with milliseconds: `2026-11-26T01:02:03.456Z`.
public enum Timestamp {
    /// ISO 8601 text for `seconds` since 1970, without going through a (slow, non-Sendable) formatter.
    public static func iso8601(_ seconds: Double) -> String {
        var millis = Int64((seconds * 1000).rounded(.down))
        let ms = Int((millis % 1000 + 1000) % 1000)
        millis -= Int64(ms)
        var time = time_t(millis / 1000)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }

    /// Parses ISO 8601 (`2026-11-26T01:02:03Z`, with or without fractional seconds, `Z` or `±hh:mm`, or a
    /// bare date) or a number of Unix seconds given as text.
    public static func parse(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds.isFinite { return seconds }
        let scalars = Array(trimmed.utf8)
        func number(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= scalars.count else { return nil }
            var value = 0
            for byte in scalars[start..<start + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard scalars.count >= 10, let year = number(0, 4), scalars[4] == 45, let month = number(5, 2), scalars[7] == 45,
              let day = number(8, 2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var hour = 0, minute = 0, second = 0.0, offset = 0
        var index = 10
        if scalars.count > 10 {
            guard scalars[10] == 84 || scalars[10] == 116 || scalars[10] == 32, let h = number(11, 2), scalars.count > 13, scalars[13] == 58,
                  let m = number(14, 2), h < 24, m < 60
            else { return nil }
            hour = h; minute = m; index = 16
            if index < scalars.count, scalars[index] == 58 {
                guard let s = number(17, 2), s < 61 else { return nil }
                second = Double(s); index = 19
                if index < scalars.count, scalars[index] == 46 || scalars[index] == 44 {
                    var fraction = 0.0, scale = 0.1
                    index += 1
                    let digitsStart = index
                    while index < scalars.count, scalars[index] >= 48 && scalars[index] <= 57 {
                        fraction += Double(scalars[index] - 48) * scale
                        scale /= 10
                        index += 1
                    }
                    guard index > digitsStart else { return nil }
                    second += fraction
                }
            }
            if index < scalars.count {
                switch scalars[index] {
                case 90, 122:  // Z
                    index += 1
                case 43, 45:  // + -
                    let sign = scalars[index] == 43 ? 1 : -1
                    guard let oh = number(index + 1, 2) else { return nil }
                    var om = 0
                    if index + 3 < scalars.count {
                        if scalars[index + 3] == 58, let value = number(index + 4, 2) { om = value; index += 6 }
                        else if let value = number(index + 3, 2) { om = value; index += 5 }
                        else { return nil }
                    } else {
                        index += 3
                    }
                    offset = sign * (oh * 3600 + om * 60)
                default:
                    return nil
                }
            }
            guard index == scalars.count else { return nil }
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = 0
        let base = timegm(&parts)
        guard base != -1 || (year == 1969) else { return nil }
        return Double(base) + second - Double(offset)
    }

    public static func now() -> Double { Date().timeIntervalSince1970 }

    /// ISO 8601 text for a JSON answer, or null.
    public static func jsonValue(_ seconds: Double?) -> JSONText.Value { seconds.map { .string(iso8601($0)) } ?? .null }
}
