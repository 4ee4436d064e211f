import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one gate every module passes a user-supplied URL through before fetching it.
///
/// It accepts only `http` and `https` URLs without credentials, and refuses any host that is, or resolves
/// to, a loopback, private, link-local, CGNAT, multicast, reserved or unspecified address (IPv4, IPv6 and
/// every IPv6 form that embeds an IPv4 address), unless private sources are allowed. Cloud metadata
/// endpoints are refused always. Hosts are read the way browsers read them, so `http://2130706433/`,
/// `http://0x7f.1/` and `http://127.0.0.%31/` are all loopback.
///
/// The answer carries the addresses that were checked; a fetcher that connects to those (rather than
/// resolving again) is also safe from DNS rebinding.
public struct SourceURLGuard: Sendable {
    /// A URL that passed the guard.
    public struct CheckedURL: Sendable, Equatable {
        public let url: String
        public let scheme: String
        public let host: String
        public let port: Int
        /// The addresses the host stood for when checked.
        public let addresses: [IPAddress]
    }

    public let allowPrivate: Bool
    let resolver: any HostResolver

    public init(allowPrivate: Bool, resolver: any HostResolver = SystemHostResolver()) {
        self.allowPrivate = allowPrivate
        self.resolver = resolver
    }

    /// Host names refused without asking DNS.
    static let blockedNames: Set<String> = [
        "localhost", "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
        "instance-data.ec2.internal", "metadata.azure.internal",
    ]
    static let blockedSuffixes = [".localhost", ".internal", ".local", ".home.arpa", ".localdomain"]
    static let metadataNames: Set<String> = ["metadata.google.internal", "metadata.goog", "metadata.azure.internal", "instance-data.ec2.internal"]

    /// The schemes fetched over HTTP, with their default ports.
    public static let web = ["http": 80, "https": 443]
    /// RTMP push targets (the Stream Manager's outputs), with their default ports.
    public static let rtmp = ["rtmp": 1935, "rtmps": 443]

    /// Checks `rawURL`, resolving its host. `schemes` are the schemes allowed, with their default ports.
    ///
    /// - Throws: ``URLRefusal`` saying why the URL may not be fetched.
    public func check(_ rawURL: String, schemes: [String: Int] = SourceURLGuard.web) async throws(URLRefusal) -> CheckedURL {
        let parsed = try Self.parse(rawURL, schemes: schemes)
        if let literal = parsed.literal {
            try vet(literal, host: parsed.host)
            return CheckedURL(url: rawURL, scheme: parsed.scheme, host: parsed.host, port: parsed.port, addresses: [literal])
        }
        if Self.metadataNames.contains(parsed.host) {
            throw .blockedHost(parsed.host, reason: "cloud metadata service")
        }
        if !allowPrivate {
            if Self.blockedNames.contains(parsed.host) || Self.blockedSuffixes.contains(where: { parsed.host.hasSuffix($0) }) {
                throw .blockedHost(parsed.host, reason: "local or internal name")
            }
        }
        let addresses: [IPAddress]
        do {
            addresses = try await resolver.resolve(parsed.host)
        } catch {
            throw .unresolvable(parsed.host)
        }
        guard !addresses.isEmpty else { throw .unresolvable(parsed.host) }
        for address in addresses {
            try vet(address, host: parsed.host)
        }
        return CheckedURL(url: rawURL, scheme: parsed.scheme, host: parsed.host, port: parsed.port, addresses: addresses)
    }

    private func vet(_ address: IPAddress, host: String) throws(URLRefusal) {
        if address.isCloudMetadata {
            throw .blockedAddress(host: host, address: address.description, reason: "cloud metadata service")
        }
        if !allowPrivate, let reason = address.restriction {
            throw .blockedAddress(host: host, address: address.description, reason: reason)
        }
    }

    struct ParsedURL {
        var scheme: String
        var host: String
        var port: Int
        var literal: IPAddress?
    }

    /// Splits a URL into scheme, host and port the way a WHATWG parser would, refusing whatever is ambiguous.
    static func parse(_ raw: String, schemes: [String: Int] = SourceURLGuard.web) throws(URLRefusal) -> ParsedURL {
        guard raw.utf8.count <= 8192 else { throw .malformed("the URL is longer than 8192 bytes") }
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .malformed("the URL is empty") }
        guard !trimmed.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f || $0 == "\\" }) else {
            throw .malformed("the URL contains spaces, control characters or backslashes")
        }
        guard let schemeEnd = trimmed.range(of: "://") else {
            throw .malformed("the URL needs a scheme, as in https://example.com/")
        }
        let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
        guard let defaultPort = schemes[scheme] else { throw .scheme(scheme, allowed: schemes.keys.sorted()) }
        let rest = trimmed[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else {
            throw .malformed("credentials (user@host) are not allowed in source URLs")
        }
        var hostPart = Substring(authority)
        var port = defaultPort
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw .malformed("unterminated IPv6 address") }
            let inside = String(hostPart[hostPart.index(after: hostPart.startIndex)..<close])
            let after = hostPart[hostPart.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .malformed("unexpected text after the IPv6 address") }
                port = try parsePort(after.dropFirst())
            }
            guard !inside.contains("%"), let address = IPAddress.parseIPv6(inside) else {
                throw .malformed("'\(inside)' is not an IPv6 address")
            }
            return ParsedURL(scheme: scheme, host: address.description, port: port, literal: address)
        }
        if let colon = hostPart.lastIndex(of: ":") {
            port = try parsePort(hostPart[hostPart.index(after: colon)...])
            hostPart = hostPart[..<colon]
        }
        guard let decoded = String(hostPart).removingPercentEncoding else {
            throw .malformed("the host has invalid percent-encoding")
        }
        var host = decoded.lowercased()
        guard !host.isEmpty else { throw .malformed("the URL has no host") }
        guard host.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f && !"/\\?#@[]%<>^|:".unicodeScalars.contains($0) }) else {
            throw .malformed("the host contains characters not allowed in a host name")
        }
        if IPAddress.endsInNumber(host) {
            guard let address = IPAddress.parseIPv4(host) else {
                throw .malformed("'\(host)' ends in a number but is not a valid IPv4 address")
            }
            return ParsedURL(scheme: scheme, host: address.description, port: port, literal: address)
        }
        if host.hasSuffix(".") { host.removeLast() }
        guard host.utf8.count <= 253, !host.isEmpty else { throw .malformed("the host name is too long") }
        return ParsedURL(scheme: scheme, host: host, port: port, literal: nil)
    }

    private static func parsePort(_ text: Substring) throws(URLRefusal) -> Int {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), text.count <= 5,
              let port = Int(text), (1...65535).contains(port)
        else { throw .malformed("'\(text.prefix(16))' is not a valid port") }
        return port
    }
}

/// Why a URL may not be fetched.
public enum URLRefusal: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case scheme(String, allowed: [String])
    case blockedHost(String, reason: String)
    case blockedAddress(host: String, address: String, reason: String)
    case unresolvable(String)

    public var description: String {
        switch self {
        case .malformed(let why): return "invalid URL: \(why)"
        case .scheme(let scheme, let allowed): return "scheme '\(scheme.prefix(20))' is not allowed; use " + allowed.joined(separator: " or ")
        case .blockedHost(let host, let reason): return "host '\(host)' is not allowed (\(reason))"
        case .blockedAddress(let host, let address, let reason):
            return "host '\(host)' resolves to \(address), which is not allowed (\(reason))"
        case .unresolvable(let host): return "host '\(host)' could not be resolved"
        }
    }
}

/// Turns host names into addresses; injectable so tests can make names resolve anywhere.
public protocol HostResolver: Sendable {
    func resolve(_ host: String) async throws -> [IPAddress]
}

/// Resolves with the system resolver (`getaddrinfo`) on NIO's blocking thread pool.
public struct SystemHostResolver: HostResolver {
    public init() {}

    public func resolve(_ host: String) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &result)
            guard status == 0, let first = result else { throw URLRefusal.unresolvable(host) }
            defer { freeaddrinfo(first) }
            var addresses: [IPAddress] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let info = cursor {
                if let sockaddr = info.pointee.ai_addr {
                    switch info.pointee.ai_family {
                    case AF_INET:
                        let v4 = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                        addresses.append(.v4(UInt32(bigEndian: v4)))
                    case AF_INET6:
                        let bytes = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                            withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                        }
                        addresses.append(.v6(bytes))
                    default: break
                    }
                }
                cursor = info.pointee.ai_next
            }
            return Array(Set(addresses))
        }
    }
}

import Foundation
