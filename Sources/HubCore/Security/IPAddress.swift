#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as raw bytes, with the classification the SSRF guard needs.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt8])  // always 16 bytes

    /// Parses an IPv4 address the way browsers and `inet_aton` do (WHATWG URL host parsing): one to four
    /// dot-separated parts in decimal, octal (`0` prefix) or hex (`0x` prefix), the last part filling the
    /// remaining bytes, so `2130706433`, `0177.1` and `0x7f.0.0.1` are all 127.0.0.1.
    ///
    /// - Returns: `nil` when the text is not an IPv4 address in any of those forms.
    public static func parseIPv4(_ text: String) -> IPAddress? {
        var parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.count > 1, parts.last == "" { parts.removeLast() }
        guard (1...4).contains(parts.count) else { return nil }
        var numbers: [UInt64] = []
        for part in parts {
            guard let number = parseIPv4Number(part) else { return nil }
            numbers.append(number)
        }
        for number in numbers.dropLast() where number > 255 { return nil }
        let lastLimit: UInt64 = 1 << (8 * UInt64(5 - numbers.count))
        guard let last = numbers.last, last < lastLimit else { return nil }
        var value: UInt64 = last
        for (index, number) in numbers.dropLast().enumerated() {
            value += number << (8 * UInt64(3 - index))
        }
        return .v4(UInt32(truncatingIfNeeded: value))
    }

    /// Whether the last dot-separated label is a number in any IPv4 notation: such a host must parse as an
    /// IPv4 address or be refused (browsers refuse it too).
    static func endsInNumber(_ host: String) -> Bool {
        var parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count > 1, parts.last == "" { parts.removeLast() }
        guard let last = parts.last, !last.isEmpty else { return false }
        if last.allSatisfy({ $0.isASCII && $0.isNumber }) { return true }
        return parseIPv4Number(String(last)) != nil
    }

    private static func parseIPv4Number(_ text: String) -> UInt64? {
        guard !text.isEmpty else { return nil }
        var digits = Substring(text)
        var radix = 10
        if digits.count >= 2, digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            digits = digits.dropFirst(2)
            radix = 16
        } else if digits.count >= 2, digits.hasPrefix("0") {
            digits = digits.dropFirst()
            radix = 8
        }
        if digits.isEmpty { return 0 }
        guard digits.count <= 32 else { return nil }
        return UInt64(digits, radix: radix)
    }

    /// Parses an IPv6 address (no brackets, no zone); embedded IPv4 tails such as `::ffff:127.0.0.1` included.
    public static func parseIPv6(_ text: String) -> IPAddress? {
        var storage = in6_addr()
        let result = text.withCString { inet_pton(AF_INET6, $0, &storage) }
        guard result == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &storage) { Array($0) }
        return .v6(bytes)
    }

    public var description: String {
        switch self {
        case .v4(let value):
            return "\(value >> 24).\((value >> 16) & 0xff).\((value >> 8) & 0xff).\(value & 0xff)"
        case .v6(let bytes):
            var storage = in6_addr()
            withUnsafeMutableBytes(of: &storage) { raw in
                for index in 0..<16 { raw[index] = bytes[index] }
            }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count)) != nil else { return "::?" }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Why this address must not be fetched from, or `nil` when it is a public unicast address.
    public var restriction: String? {
        switch self {
        case .v4(let value): return Self.restriction(ipv4: value)
        case .v6(let bytes): return Self.restriction(ipv6: bytes)
        }
    }

    /// Whether the address is a cloud metadata endpoint, refused even when private sources are allowed.
    public var isCloudMetadata: Bool {
        switch self {
        case .v4(let value):
            return value == 0xA9FE_A9FE /* 169.254.169.254 */ || value == 0x6464_64C8 /* 100.100.100.200 */
                || value == 0xA9FE_AA02 /* 169.254.170.2, ECS task metadata */
        case .v6(let bytes):
            // fd00:ec2::254
            return bytes == [0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54]
                || Self.embeddedIPv4(bytes).map { IPAddress.v4($0).isCloudMetadata } == true
        }
    }

    private static func restriction(ipv4 value: UInt32) -> String? {
        func within(_ base: UInt32, _ prefix: UInt32) -> Bool {
            let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
            return value & mask == base & mask
        }
        if within(0x0000_0000, 8) { return "unspecified/this-network (0.0.0.0/8)" }
        if within(0x0A00_0000, 8) { return "private (10.0.0.0/8)" }
        if within(0x6440_0000, 10) { return "carrier-grade NAT (100.64.0.0/10)" }
        if within(0x7F00_0000, 8) { return "loopback (127.0.0.0/8)" }
        if within(0xA9FE_0000, 16) { return "link-local (169.254.0.0/16)" }
        if within(0xAC10_0000, 12) { return "private (172.16.0.0/12)" }
        if within(0xC000_0000, 24) { return "IETF protocol assignments (192.0.0.0/24)" }
        if within(0xC000_0200, 24) { return "documentation (192.0.2.0/24)" }
        if within(0xC058_6300, 24) { return "6to4 relay (192.88.99.0/24)" }
        if within(0xC0A8_0000, 16) { return "private (192.168.0.0/16)" }
        if within(0xC612_0000, 15) { return "benchmarking (198.18.0.0/15)" }
        if within(0xC633_6400, 24) { return "documentation (198.51.100.0/24)" }
        if within(0xCB00_7100, 24) { return "documentation (203.0.113.0/24)" }
        if within(0xE000_0000, 4) { return "multicast (224.0.0.0/4)" }
        if within(0xF000_0000, 4) { return "reserved/broadcast (240.0.0.0/4)" }
        return nil
    }

    /// The IPv4 address carried inside an IPv6 one (mapped, compatible, NAT64 or 6to4), if any.
    static func embeddedIPv4(_ bytes: [UInt8]) -> UInt32? {
        func v4(_ offset: Int) -> UInt32 {
            UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
        }
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible)
        if bytes[0..<10].allSatisfy({ $0 == 0 }), (bytes[10] == 0xff && bytes[11] == 0xff) || (bytes[10] == 0 && bytes[11] == 0) {
            return v4(12)
        }
        // 64:ff9b::/96 (NAT64)
        if bytes[0..<12] == [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] { return v4(12) }
        // 2002::/16 (6to4)
        if bytes[0] == 0x20, bytes[1] == 0x02 { return v4(2) }
        return nil
    }

    private static func restriction(ipv6 bytes: [UInt8]) -> String? {
        if bytes.allSatisfy({ $0 == 0 }) { return "unspecified (::)" }
        if bytes[0..<15].allSatisfy({ $0 == 0 }), bytes[15] == 1 { return "loopback (::1)" }
        if let embedded = embeddedIPv4(bytes) {
            if let inner = restriction(ipv4: embedded) { return "IPv6 form of an IPv4 address that is \(inner)" }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0, bytes[11] == 0 {
                return "deprecated IPv4-compatible IPv6 (::/96)"
            }
            return nil
        }
        if bytes[0] == 0 { return "reserved (::/8)" }
        if bytes[0..<8] == [0x01, 0, 0, 0, 0, 0, 0, 0] { return "discard-only (100::/64)" }
        if bytes[0..<4] == [0x20, 0x01, 0x0d, 0xb8] { return "documentation (2001:db8::/32)" }
        if bytes[0..<4] == [0x20, 0x01, 0x00, 0x00] { return "Teredo tunnelling (2001::/32)" }
        if bytes[0] & 0xfe == 0xfc { return "unique local (fc00::/7)" }
        if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0x80 { return "link-local (fe80::/10)" }
        if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0xc0 { return "site-local (fec0::/10)" }
        if bytes[0] == 0xff { return "multicast (ff00::/8)" }
        return nil
    }
}
