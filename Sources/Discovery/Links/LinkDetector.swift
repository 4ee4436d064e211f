import Foundation
import Registry

/// A stream link found in a chat message, in the registry's canonical form.
public struct DetectedLink: Sendable, Equatable {
    /// What the link points at.
    public enum Kind: String, Sendable {
        /// A channel that goes live now and then (twitch.tv/name, kick.com/name).
        case channel
        /// One broadcast or video (youtube.com/watch?v=…, twitch.tv/videos/…).
        case video
        /// A page that shows a channel's current live broadcast (tiktok.com/@name/live).
        case live
        /// An HLS playlist.
        case playlist
        /// A link on a host the operator configured.
        case configured
    }

    /// The canonical link (what the registry stores).
    public let link: StreamLink
    public let kind: Kind
    /// The text as it appeared in the message.
    public let raw: String

    public var url: String { link.url }
    public var platform: Platform { link.platform }
}

/// Finds stream links in chat messages.
///
/// Links are found with or without a scheme, inside angle brackets or markdown links, and with
/// punctuation after them. A link counts only when it points at something that streams: a channel or a
/// broadcast on a known platform, an `.m3u8` playlist, or any page on a host the operator configured.
/// Emails, images and ordinary web pages are not stream links.
public struct LinkDetector: Sendable {
    /// Hosts (and their subdomains) whose every link counts as a stream, e.g. an Owncast server.
    public let extraHosts: [String]
    /// Longest message looked at, in bytes; the rest is ignored.
    public static let maxMessageBytes = 16_384
    /// Most links taken from one message.
    public static let maxLinks = 20

    public init(extraHosts: [String] = []) {
        self.extraHosts = extraHosts.map { $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: " .")) }.filter { !$0.isEmpty }
    }

    /// Every stream link in `text`, canonical and without duplicates, in the order they appear.
    public func links(in text: String) -> [DetectedLink] {
        var found: [DetectedLink] = []
        var seen: Set<String> = []
        for token in Self.candidates(in: String(text.utf8.prefix(Self.maxMessageBytes)) ?? "") {
            guard let detected = classify(token), seen.insert(detected.url).inserted else { continue }
            found.append(detected)
            if found.count == Self.maxLinks { break }
        }
        return found
    }

    // MARK: Finding candidates

    /// Characters that end a URL in chat: whitespace, brackets and quotes (markdown `[text](url)`,
    /// `<url>`, `"url"`), and the ones no stream URL has.
    static let separators: Set<Character> = ["<", ">", "(", ")", "[", "]", "{", "}", "\"", "'", "`", "|", "\\", "^"]
    static let trailingPunctuation: Set<Character> = [".", ",", ";", ":", "!", "?", "*", "_", "~", "…", "-"]
    static let leadingPunctuation: Set<Character> = ["*", "_", "~", ":", ",", ";", "."]

    /// Pieces of text that could be URLs.
    static func candidates(in text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        func flush() {
            defer { current = "" }
            var token = Substring(current)
            // "here:https://…" — a URL glued to the word before it.
            if let scheme = token.range(of: "http", options: .caseInsensitive), scheme.lowerBound != token.startIndex,
               token[scheme.upperBound...].hasPrefix("://") || token[scheme.upperBound...].lowercased().hasPrefix("s://") {
                token = token[scheme.lowerBound...]
            }
            while let first = token.first, leadingPunctuation.contains(first) { token = token.dropFirst() }
            while let last = token.last, trailingPunctuation.contains(last) { token = token.dropLast() }
            guard token.count >= 4, token.contains(".") else { return }
            tokens.append(String(token))
        }
        for character in text {
            if character.isWhitespace || separators.contains(character) || character.unicodeScalars.contains(where: { $0.value < 0x20 }) {
                flush()
            } else {
                current.append(character)
            }
        }
        flush()
        return tokens
    }

    // MARK: Classifying

    /// The stream link `token` stands for, or `nil`.
    func classify(_ token: String) -> DetectedLink? {
        let lower = token.lowercased()
        let hasScheme = lower.hasPrefix("http://") || lower.hasPrefix("https://")
        if !hasScheme {
            // Some other scheme (mailto:, ftp:, javascript:) is never a stream link.
            let slash = lower.firstIndex(of: "/") ?? lower.endIndex
            if let colon = lower.firstIndex(of: ":"), colon < slash,
               !lower[lower.index(after: colon)..<slash].allSatisfy(\.isNumber) {
                return nil
            }
        }
        // An '@' before the path is an email address or credentials, not a stream.
        let afterScheme = hasScheme ? lower[lower.index(lower.startIndex, offsetBy: lower.hasPrefix("https://") ? 8 : 7)...] : lower[...]
        let authority = afterScheme.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@"), !authority.isEmpty else { return nil }
        let hostOnly = authority.split(separator: ":").first.map(String.init) ?? ""
        guard let tld = hostOnly.split(separator: ".").last, (tld.count >= 2 && tld.allSatisfy(\.isLetter)) || IPv4Check.isDotted(hostOnly) else { return nil }

        guard let link = try? StreamLink(token), var components = URLComponents(string: link.url), let host = components.host else { return nil }
        let path = components.path
        let segments = path.split(separator: "/").map(String.init)
        if Self.imageExtensions.contains(where: { path.lowercased().hasSuffix($0) }) { return nil }

        if path.lowercased().hasSuffix(".m3u8") {
            return DetectedLink(link: link, kind: .playlist, raw: token)
        }
        // Without a scheme, only links to known stream hosts count (so "e.g." or "file.txt" do not).
        let configured = extraHosts.contains { host == $0 || host.hasSuffix("." + $0) }
        if configured { return DetectedLink(link: link, kind: .configured, raw: token) }
        if !hasScheme && link.platform == .other { return nil }

        switch link.platform {
        case .twitch: return twitch(link, host: host, segments: segments, components: &components, raw: token)
        case .youtube: return youtube(link, host: host, segments: segments, components: &components, raw: token)
        case .tiktok:
            guard segments.count >= 2, segments[0].hasPrefix("@"), segments[0].count > 1, segments[1] == "live" else { return nil }
            return canonical("https://tiktok.com/\(segments[0])/live", kind: .live, raw: token)
        case .kick:
            guard let channel = segments.first, Self.handle(channel), !Self.kickReserved.contains(channel) else { return nil }
            if segments.count >= 3, ["videos", "video"].contains(segments[1]) {
                return canonical("https://kick.com/\(channel)/videos/\(segments[2])", kind: .video, raw: token)
            }
            guard segments.count == 1 else { return nil }
            return canonical("https://kick.com/\(channel)", kind: .channel, raw: token)
        case .facebook: return facebook(link, host: host, segments: segments, components: components, raw: token)
        case .instagram:
            guard segments.count >= 2, Self.handle(segments[0], extra: "."), segments[1] == "live" else { return nil }
            return canonical("https://instagram.com/\(segments[0])/live", kind: .live, raw: token)
        case .x:
            guard segments.count >= 3, segments[0] == "i", segments[1] == "broadcasts", Self.identifier(segments[2]) else { return nil }
            return canonical("https://x.com/i/broadcasts/\(segments[2])", kind: .video, raw: token)
        case .rumble:
            if let first = segments.first, first.hasPrefix("v"), first.hasSuffix(".html") || first.contains("-") {
                return DetectedLink(link: link, kind: .video, raw: token)
            }
            if segments.count == 2, segments[0] == "embed" { return canonical("https://rumble.com/embed/\(segments[1])", kind: .video, raw: token) }
            if segments.count >= 2, segments.last == "live" { return DetectedLink(link: link, kind: .live, raw: token) }
            return nil
        case .hls, .other:
            return nil
        }
    }

    static let imageExtensions = [".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".ico", ".heic", ".avif"]

    static let twitchReserved: Set<String> = [
        "directory", "settings", "downloads", "jobs", "p", "store", "subscriptions", "inventory", "wallet", "drops",
        "search", "friends", "messages", "turbo", "prime", "login", "signup", "payments", "videos", "following",
        "moderator", "broadcast", "popout", "embed", "team", "collections", "privacy", "legal", "help", "bits", "redeem",
    ]
    static let kickReserved: Set<String> = [
        "categories", "browse", "following", "search", "dashboard", "login", "signup", "privacy-policy",
        "terms-of-service", "community-guidelines", "category", "about", "help", "support", "video", "videos", "clips",
    ]

    func twitch(_ link: StreamLink, host: String, segments: [String], components: inout URLComponents, raw: String) -> DetectedLink? {
        if host.hasPrefix("clips.") { return nil }
        if host.hasPrefix("player.") {
            if let channel = components.queryItems?.first(where: { $0.name == "channel" })?.value?.lowercased(), Self.handle(channel) {
                return canonical("https://twitch.tv/\(channel)", kind: .channel, raw: raw)
            }
            if let video = components.queryItems?.first(where: { $0.name == "video" })?.value, Self.digits(video.trimmingCharacters(in: CharacterSet(charactersIn: "v"))) {
                return canonical("https://twitch.tv/videos/\(video.trimmingCharacters(in: CharacterSet(charactersIn: "v")))", kind: .video, raw: raw)
            }
            return nil
        }
        guard let first = segments.first else { return nil }
        if first == "videos", segments.count >= 2, Self.digits(segments[1]) {
            return canonical("https://twitch.tv/videos/\(segments[1])", kind: .video, raw: raw)
        }
        guard Self.handle(first), (3...25).contains(first.count), !Self.twitchReserved.contains(first) else { return nil }
        if segments.count >= 3, ["video", "v"].contains(segments[1]), Self.digits(segments[2]) {
            return canonical("https://twitch.tv/videos/\(segments[2])", kind: .video, raw: raw)
        }
        guard segments.count == 1 || (segments.count == 2 && ["live", "home", "about"].contains(segments[1])) else { return nil }
        return canonical("https://twitch.tv/\(first)", kind: .channel, raw: raw)
    }

    func youtube(_ link: StreamLink, host: String, segments: [String], components: inout URLComponents, raw: String) -> DetectedLink? {
        func video(_ id: String) -> DetectedLink? {
            guard Self.youtubeID(id) else { return nil }
            return canonical("https://youtube.com/watch?v=\(id)", kind: .video, raw: raw)
        }
        if host == "youtu.be" {
            guard let id = segments.first else { return nil }
            return video(id)
        }
        guard let first = segments.first else { return nil }
        switch first {
        case "watch":
            guard let id = components.queryItems?.first(where: { $0.name == "v" })?.value else { return nil }
            return video(id)
        case "live", "embed", "v":
            guard segments.count >= 2 else { return nil }
            return video(segments[1])
        case "shorts":
            guard segments.count >= 2, Self.youtubeID(segments[1]) else { return nil }
            return canonical("https://youtube.com/shorts/\(segments[1])", kind: .video, raw: raw)
        case "channel", "c", "user":
            guard segments.count == 3, segments[2] == "live", Self.identifier(segments[1]) else { return nil }
            return canonical("https://youtube.com/\(first)/\(segments[1])/live", kind: .live, raw: raw)
        default:
            // youtube.com/@handle/live (handles are case-insensitive).
            guard first.hasPrefix("@"), first.count > 1, segments.count == 2, segments[1] == "live" else { return nil }
            return canonical("https://youtube.com/\(first.lowercased())/live", kind: .live, raw: raw)
        }
    }

    func facebook(_ link: StreamLink, host: String, segments: [String], components: URLComponents, raw: String) -> DetectedLink? {
        if host == "fb.watch" {
            guard let id = segments.first, Self.identifier(id) else { return nil }
            return DetectedLink(link: link, kind: .video, raw: raw)
        }
        let v = components.queryItems?.first(where: { $0.name == "v" })?.value
        if segments.first == "watch" || segments.first == "video.php" {
            guard let v, Self.digits(v) else { return nil }
            return canonical("https://facebook.com/watch/?v=\(v)", kind: .video, raw: raw)
        }
        if segments.count >= 3, segments[1] == "videos" {
            let id = segments.last ?? ""
            guard Self.digits(id) else { return nil }
            return canonical("https://facebook.com/\(segments[0])/videos/\(id)", kind: .video, raw: raw)
        }
        if segments.count == 2, segments[1] == "live", Self.handle(segments[0], extra: ".") {
            return canonical("https://facebook.com/\(segments[0])/live", kind: .live, raw: raw)
        }
        return nil
    }

    func canonical(_ url: String, kind: DetectedLink.Kind, raw: String) -> DetectedLink? {
        guard let link = try? StreamLink(url) else { return nil }
        return DetectedLink(link: link, kind: kind, raw: raw)
    }

    static func handle(_ text: String, extra: String = "") -> Bool {
        !text.isEmpty && text.count <= 64 && text.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == "-" || extra.contains($0) }
    }

    static func identifier(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 128 && text.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == "-" }
    }

    static func digits(_ text: String) -> Bool { !text.isEmpty && text.count <= 24 && text.allSatisfy { $0.isASCII && $0.isNumber } }

    static func youtubeID(_ text: String) -> Bool { text.count == 11 && identifier(text) }
}

enum IPv4Check {
    static func isDotted(_ host: String) -> Bool {
        let parts = host.split(separator: ".")
        return parts.count == 4 && parts.allSatisfy { $0.count <= 3 && $0.allSatisfy(\.isNumber) }
    }
}
