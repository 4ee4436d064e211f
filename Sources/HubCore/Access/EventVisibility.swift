/// Who a connected client is, as far as event routing cares: decided once when the connection is
/// authenticated, never per frame.
public enum Audience: Hashable, Sendable {
    /// Not signed in (a cable before its `auth` message).
    case anonymous
    /// A signed-in user or an API key with this role.
    case role(Role)
    /// A service key (the speech-to-text side, caption senders).
    case service
    /// An overlay key of this community.
    case community(Int64)
    /// A wall display link: it may watch that wall and what is on it.
    case display(wall: String)
}

/// Who may receive an event. Every published event carries one, set by its publisher; the hub checks it
/// once per audience group when it routes the event (never per client). An event published without one
/// reaches admins only, so a new event type cannot leak by default.
///
/// The rules, one place for every channel:
/// - roles: a user or API key of at least `minimumRole`;
/// - `community`: that community's overlay keys (and, through `minimumRole`, editors and admins, who
///   manage every community through REST — StreamHub has no per-community membership, so viewers see
///   no community's captions);
/// - `service`: service keys;
/// - `walls`: display links of those walls;
/// - `everyone`: any connected client, signed in or not.
public struct EventVisibility: Sendable, Hashable {
    public var minimumRole: Role?
    public var community: Int64?
    public var service: Bool
    public var everyone: Bool
    public var walls: Set<String>

    public init(minimumRole: Role? = nil, community: Int64? = nil, service: Bool = false, everyone: Bool = false, walls: Set<String> = []) {
        self.minimumRole = minimumRole
        self.community = community
        self.service = service
        self.everyone = everyone
        self.walls = walls
    }

    /// Anyone connected.
    public static let everyone = EventVisibility(everyone: true)
    /// Signed-in viewers, editors and admins: what `GET /api/v1/...` gives a viewer (streams, recordings).
    public static let viewers = EventVisibility(minimumRole: .viewer)
    /// The default of an event that declared nothing.
    public static let admins = EventVisibility(minimumRole: .admin)
    /// Instance-to-instance coordination: no client ever receives it.
    public static let nobody = EventVisibility()

    /// A community's content (captions): its overlay keys, editors and admins.
    public static func community(_ id: Int64) -> EventVisibility {
        EventVisibility(minimumRole: .editor, community: id)
    }

    /// Speech events (`transcription`, `wake_word`): service keys, plus the community's audience when the
    /// speech belongs to one, or every signed-in viewer when it does not.
    public static func speech(community: Int64?) -> EventVisibility {
        guard let community else { return EventVisibility(minimumRole: .viewer, service: true) }
        return EventVisibility(minimumRole: .editor, community: community, service: true)
    }

    /// A recording's state, exports and previews: whoever may read recordings through REST (viewers).
    public static func recording(_ id: String) -> EventVisibility { .viewers }

    /// Also shown to the display links of `wall`.
    public func adding(wall: String) -> EventVisibility {
        var copy = self
        copy.walls.insert(wall)
        return copy
    }

    /// Whether a client of `audience` receives the event.
    public func admits(_ audience: Audience) -> Bool {
        if everyone { return true }
        switch audience {
        case .anonymous: return false
        case .role(let role): return minimumRole.map { role >= $0 } ?? false
        case .service: return service
        case .community(let id): return community == id
        case .display(let wall): return walls.contains(wall)
        }
    }
}

extension EventVisibility {
    /// A compact text form for the backplane: `r=viewer;c=12;s;e;w=lobby,desk` (empty for nobody).
    public var wireForm: String {
        var parts: [String] = []
        if let minimumRole { parts.append("r=" + minimumRole.rawValue) }
        if let community { parts.append("c=" + String(community)) }
        if service { parts.append("s") }
        if everyone { parts.append("e") }
        if !walls.isEmpty { parts.append("w=" + walls.sorted().joined(separator: ",")) }
        return parts.joined(separator: ";")
    }

    /// Parses ``wireForm``; anything unreadable becomes admins-only.
    public init(wireForm: Substring) {
        self.init()
        for part in wireForm.split(separator: ";") {
            switch part.first {
            case "r": guard let role = Role(rawValue: String(part.dropFirst(2))) else { self = .admins; return }; minimumRole = role
            case "c": guard let id = Int64(part.dropFirst(2)) else { self = .admins; return }; community = id
            case "s": service = true
            case "e": everyone = true
            case "w": walls = Set(part.dropFirst(2).split(separator: ",").map(String.init))
            default: self = .admins; return
            }
        }
    }
}
