import Foundation

/// A stream link in its one canonical form, so the same stream posted twice is found as one.
///
/// Normalisation: a missing scheme becomes `https`; scheme and host are lowercased; default ports, the
/// fragment, a trailing slash and tracking parameters (`utm_*`, `si`, `fbclid`, …) are dropped; on the
/// big platforms `www.` and `m.` are dropped too, and handles (case-insensitive there) are lowercased.
public struct StreamLink: Sendable, Equatable, CustomStringConvertible {
    /// The canonical form: the key for de-duplication, `link=` and `search=` look-ups and discovery.
    public let url: String
    public let platform: Platform
    /// The link exactly as it was posted (trimmed, without surrounding `<…>`), which the API shows back.
    public let posted: String

    public var description: String { url }

    /// Longest link accepted, in bytes.
    public static let maxLength = 2048

    public enum Invalid: Error, CustomStringConvertible, Equatable {
        case empty, tooLong, scheme(String), malformed

        public var description: String {
            switch self {
            case .empty: return "link must not be empty"
            case .tooLong: return "link must be at most \(StreamLink.maxLength) characters"
            case .scheme(let scheme): return "link must be an http(s) URL, not \(scheme):"
            case .malformed: return "link is not a valid URL"
            }
        }
    }

    /// Tracking parameters dropped from every link.
    static let trackingParameters: Set<String> = ["si", "fbclid", "gclid", "dclid", "igshid", "igsh", "mc_cid", "mc_eid", "msclkid"]
    /// Share-button parameters dropped from the big platforms' links only (elsewhere they may mean something).
    static let platformShareParameters: Set<String> = ["feature", "s", "_t", "_r", "t_src", "ref_src", "ref_url", "ab_channel", "pp", "is_from_webapp", "sender_device"]

    static let platformHosts: [(suffix: String, platform: Platform)] = [
        ("twitch.tv", .twitch), ("youtube.com", .youtube), ("youtu.be", .youtube), ("youtube-nocookie.com", .youtube),
        ("tiktok.com", .tiktok), ("kick.com", .kick), ("facebook.com", .facebook), ("fb.watch", .facebook), ("fb.com", .facebook),
        ("instagram.com", .instagram), ("x.com", .x), ("twitter.com", .x), ("rumble.com", .rumble),
    ]

    /// Platforms whose handles are case-insensitive, so their paths are lowercased.
    static let caseInsensitivePaths: Set<Platform> = [.twitch, .kick, .tiktok, .instagram, .x]

    public init(_ raw: String) throws(Invalid) {
        var text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("<"), text.hasSuffix(">") { text = String(text.dropFirst().dropLast()) }
        guard !text.isEmpty else { throw .empty }
        guard text.utf8.count <= Self.maxLength else { throw .tooLong }
        let posted = text
        guard !text.contains(where: { $0.isWhitespace || $0.unicodeScalars.contains { $0.value < 0x20 } }) else { throw .malformed }

        if let colon = text.firstIndex(of: ":") {
            let scheme = text[..<colon]
            let looksLikeScheme = scheme.first?.isLetter == true && scheme.allSatisfy { $0.isLetter || $0.isNumber || "+-.".contains($0) }
            let rest = text[text.index(after: colon)...]
            if looksLikeScheme, !(rest.first?.isNumber ?? false) || rest.hasPrefix("//") {
                guard ["http", "https"].contains(scheme.lowercased()) else { throw .scheme(String(scheme.lowercased().prefix(20))) }
                guard rest.hasPrefix("//") else { throw .malformed }
            } else {
                text = "https://" + text
            }
        } else {
            text = "https://" + text
        }
        guard var components = URLComponents(string: text), let rawHost = components.host, !rawHost.isEmpty else { throw .malformed }
        components.scheme = components.scheme?.lowercased()
        var host = rawHost.lowercased()
        if host.hasSuffix(".") { host.removeLast() }
        guard host.contains(".") || host == "localhost" || host.hasPrefix("["),
              host.allSatisfy({ $0.isLetter || $0.isNumber || "-._[]:".contains($0) })
        else { throw .malformed }
        if (components.scheme == "https" && components.port == 443) || (components.scheme == "http" && components.port == 80) {
            components.port = nil
        }

        var platform = Self.platform(host: host)
        if platform != .other {
            for prefix in ["www.", "m.", "mobile."] where host.hasPrefix(prefix) { host.removeFirst(prefix.count) }
        }
        components.host = host
        components.fragment = nil

        var path = components.percentEncodedPath
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        if path == "/" { path = "" }
        if platform == .other, path.lowercased().hasSuffix(".m3u8") { platform = .hls }
        // Handles are case-insensitive there, but X broadcast ids (/i/broadcasts/…) are not.
        if Self.caseInsensitivePaths.contains(platform), !(platform == .x && path.hasPrefix("/i/")) { path = path.lowercased() }
        components.percentEncodedPath = path

        if let items = components.percentEncodedQueryItems {
            let kept = items.filter { item in
                let name = item.name.lowercased()
                if name.hasPrefix("utm_") || Self.trackingParameters.contains(name) { return false }
                return platform == .other || platform == .hls || !Self.platformShareParameters.contains(name)
            }
            components.percentEncodedQueryItems = kept.isEmpty ? nil : kept
        }
        guard let url = components.string else { throw .malformed }
        self.url = url
        self.platform = platform
        self.posted = posted
    }

    /// The platform a host belongs to (`other` when none).
    public static func platform(host: String) -> Platform {
        let host = host.lowercased()
        for (suffix, platform) in platformHosts where host == suffix || host.hasSuffix("." + suffix) {
            return platform
        }
        return .other
    }
}
