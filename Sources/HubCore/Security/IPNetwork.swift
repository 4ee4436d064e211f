/// An address block in CIDR notation (`10.0.0.0/8`, `fc00::/7`, or one address), for allow lists.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Parses `address/prefix` or a single address; `nil` when either part is malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let host = String(parts[0])
        guard let address = IPAddress.parseStrictIPv4(host) ?? IPAddress.parseIPv6(host) else { return nil }
        let bits = address.bitCount
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...bits).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = bits
        }
        self.address = address
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// Whether `candidate` is inside the block. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as IPv4.
    public func contains(_ candidate: IPAddress) -> Bool {
        let candidateBytes = candidate.unmapped.bytes
        let networkBytes = address.bytes
        guard candidateBytes.count == networkBytes.count else { return false }
        var remaining = prefixLength
        for index in 0..<networkBytes.count where remaining > 0 {
            let take = min(8, remaining)
            let mask: UInt8 = take == 8 ? 0xff : ~(0xff >> UInt8(take))
            if candidateBytes[index] & mask != networkBytes[index] & mask { return false }
            remaining -= take
        }
        return true
    }

    /// Loopback and private networks: where Prometheus and health checks usually come from.
    public static let loopbackAndPrivate: [IPNetwork] = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        .compactMap(IPNetwork.init)

    /// Whether `address` (as text, e.g. a peer address) is inside any of `networks`.
    public static func any(_ networks: [IPNetwork], contains address: String?) -> Bool {
        guard let address, let parsed = IPAddress.parseStrictIPv4(address) ?? IPAddress.parseIPv6(address) else { return false }
        return networks.contains { $0.contains(parsed) }
    }
}

extension IPAddress {
    /// Dotted-quad IPv4 only (`a.b.c.d`, each 0–255): an allow list must not accept the lenient forms the
    /// SSRF guard recognises.
    static func parseStrictIPv4(_ text: String) -> IPAddress? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), let octet = UInt32(part), octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        return .v4(value)
    }

    var bitCount: Int {
        if case .v4 = self { return 32 }
        return 128
    }

    var bytes: [UInt8] {
        switch self {
        case .v4(let value): return [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
        case .v6(let bytes): return bytes
        }
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address, else itself.
    var unmapped: IPAddress {
        if case .v6(let bytes) = self, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return .v4(UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15]))
        }
        return self
    }
}
