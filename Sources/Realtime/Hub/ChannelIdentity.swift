import HubCore

/// Who holds a hub connection: the audience its events are routed by, plus what is needed to close it when
/// its credential stops being valid (expiry, logout, a disabled account, a revoked key).
public struct ChannelIdentity: Sendable, Equatable {
    /// Routes events: decided once when the connection is authenticated.
    public var audience: Audience
    /// The account or key behind it, e.g. `user:5`, `api_key:3`, `service`, `overlay:12`; `nil` when anonymous.
    public var subject: String?
    /// The login token's id (`jti`), so a logout closes exactly the sockets opened with that token.
    public var tokenID: String?
    /// Unix seconds when the credential expires; the hub closes the connection then (4401).
    public var expiresAt: Double?
    /// A readable name for logs and the cable's welcome (an email, a key name).
    public var name: String

    public init(audience: Audience, subject: String? = nil, tokenID: String? = nil, expiresAt: Double? = nil, name: String = "") {
        self.audience = audience
        self.subject = subject
        self.tokenID = tokenID
        self.expiresAt = expiresAt
        self.name = name
    }

    public static let anonymous = ChannelIdentity(audience: .anonymous)
}
