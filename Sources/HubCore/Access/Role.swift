/// What a user or API key may do: viewers read, editors also write streams, admins do everything.
///
/// Lives in HubCore because every way in — REST, WebSocket channels, gRPC, pages — decides with it.
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
