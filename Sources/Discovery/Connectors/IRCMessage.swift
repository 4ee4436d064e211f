/// One IRC protocol line (RFC 1459 with IRCv3 message tags), as Twitch chat sends them:
/// `@badge-info=;display-name=Ada :ada!ada@ada.tmi.twitch.tv PRIVMSG #channel :hello`.
public struct IRCMessage: Sendable, Equatable {
    public var tags: [String: String]
    /// The source (`nick!user@host` or a server name), without the leading ':'.
    public var prefix: String?
    public var command: String
    public var parameters: [String]

    public init(tags: [String: String] = [:], prefix: String? = nil, command: String, parameters: [String] = []) {
        self.tags = tags
        self.prefix = prefix
        self.command = command
        self.parameters = parameters
    }

    /// The nick in the prefix.
    public var nick: String? {
        guard let prefix else { return nil }
        return String(prefix.prefix { $0 != "!" && $0 != "@" })
    }

    /// Longest line accepted: 8191 bytes of tags plus 512 of message (IRCv3).
    public static let maxLineBytes = 8191 + 512

    /// Parses one line (without CR LF); `nil` when it is empty, too long, or has no command.
    public init?(line: Substring) {
        guard !line.isEmpty, line.utf8.count <= Self.maxLineBytes else { return nil }
        var rest = line
        var tags: [String: String] = [:]
        if rest.hasPrefix("@") {
            guard let space = rest.firstIndex(of: " ") else { return nil }
            for pair in rest[rest.index(after: rest.startIndex)..<space].split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                tags[String(parts[0])] = parts.count > 1 ? Self.unescapeTag(parts[1]) : ""
            }
            rest = rest[space...].drop { $0 == " " }
        }
        var prefix: String?
        if rest.hasPrefix(":") {
            guard let space = rest.firstIndex(of: " ") else { return nil }
            prefix = String(rest[rest.index(after: rest.startIndex)..<space])
            rest = rest[space...].drop { $0 == " " }
        }
        var parameters: [String] = []
        let commandEnd = rest.firstIndex(of: " ") ?? rest.endIndex
        let command = rest[..<commandEnd]
        guard !command.isEmpty else { return nil }
        rest = rest[commandEnd...].drop { $0 == " " }
        while !rest.isEmpty {
            if rest.hasPrefix(":") {
                parameters.append(String(rest.dropFirst()))
                break
            }
            let end = rest.firstIndex(of: " ") ?? rest.endIndex
            parameters.append(String(rest[..<end]))
            rest = rest[end...].drop { $0 == " " }
        }
        self.init(tags: tags, prefix: prefix, command: command.uppercased(), parameters: parameters)
    }

    /// IRCv3 tag values escape ';', ' ', '\', CR and LF.
    static func unescapeTag(_ value: Substring) -> String {
        guard value.contains("\\") else { return String(value) }
        var out = ""
        var escaping = false
        for character in value {
            if escaping {
                switch character {
                case ":": out.append(";")
                case "s": out.append(" ")
                case "r": out.append("\r")
                case "n": out.append("\n")
                default: out.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        return out
    }
}
