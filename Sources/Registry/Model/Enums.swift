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

extension CaseIterable where Self: RawRepresentable, RawValue == String {
    /// "a, b or c", for error messages.
    static var choices: String {
        let all = allCases.map(\.rawValue)
        return all.dropLast().joined(separator: ", ") + " or " + (all.last ?? "")
    }
}
