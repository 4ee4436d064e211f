/// Where a stream is hosted; derived from its link.
public enum Platform: String, CaseIterable, Codable, Sendable {
    case twitch, youtube, tiktok, kick, facebook, instagram, x, rumble, hls, other
}

/// Whether a stream is on air, as last checked.
public enum StreamStatus: String, CaseIterable, Codable, Sendable {
    case live, offline, unknown

    /// The label the Streamwall wall app shows.
    public var wallLabel: String {
        switch self {
        case .live: return "Live"
        case .offline: return "Offline"
        case .unknown: return "Unknown"
        }
    }
}

/// What a stream shows on the wall.
public enum StreamKind: String, CaseIterable, Codable, Sendable {
    case video, web, overlay, background
}

public enum Orientation: String, CaseIterable, Codable, Sendable {
    case vertical, horizontal

    public var wallLabel: String { self == .vertical ? "V" : "H" }
}

/// What a user or API key may do: viewers read, editors also write streams, admins do everything.
public enum Role: String, CaseIterable, Codable, Sendable, Comparable {
    case viewer, editor, admin

    private var rank: Int {
        switch self {
        case .viewer: return 0
        case .editor: return 1
        case .admin: return 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    /// Parses a role, case-insensitively.
    public init?(label: String) {
        self.init(rawValue: label.lowercased())
    }
}

extension CaseIterable where Self: RawRepresentable, RawValue == String {
    /// "a, b or c", for error messages.
    static var choices: String {
        let all = allCases.map(\.rawValue)
        return all.dropLast().joined(separator: ", ") + " or " + (all.last ?? "")
    }
}
