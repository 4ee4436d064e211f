import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore

/// The request context of every route in the application. Besides Hummingbird's core storage it keeps the
/// connection's channel (the WebSocket hub writes to it directly), a request id that every log line of the
/// request carries, and the authenticated principal once a module's authenticator has set it.
public struct HubRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<HubRequestContext>
    /// The channel the request arrived on.
    public let channel: any Channel
    /// A random id for this request, echoed in `X-Request-Id` and in every log line.
    public var requestID: String
    /// Who made the request, when an authenticator recognised them.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.channel = source.channel
        self.requestID = RequestID.make()
        self.principal = nil
        self.logger[metadataKey: "request_id"] = .string(self.requestID)
    }

    /// The peer's IP address as text, when known.
    public var remoteAddress: String? { channel.remoteAddress?.ipAddress }
}

/// Someone or something a request is made on behalf of.
public struct Principal: Sendable, Equatable {
    public enum Kind: String, Sendable { case user, apiKey = "api_key", service, wallLink = "wall_link" }
    public var kind: Kind
    public var id: String
    public var role: String
    /// A readable name for logs and the audit trail (an email, an API key's name).
    public var name: String
    /// What a scoped credential is limited to, e.g. a wall link's wall and what it may do there.
    public var scope: Scope?

    /// A credential that opens one thing only: a wall link opens its wall, as an operator (may change
    /// cells and audio), a viewer (sees everything, changes nothing) or a display (watches that wall only).
    public struct Scope: Sendable, Equatable {
        public var wall: String
        public var access: String
        public var expiresAt: Double?

        public init(wall: String, access: String, expiresAt: Double?) {
            self.wall = wall
            self.access = access
            self.expiresAt = expiresAt
        }
    }

    public init(kind: Kind, id: String, role: String, name: String = "", scope: Scope? = nil) {
        self.kind = kind
        self.id = id
        self.role = role
        self.name = name
        self.scope = scope
    }

    /// How the audit log names this principal, e.g. `user:ada@example.org`, `api_key:checker`.
    public var actor: String { "\(kind.rawValue):\(name.isEmpty ? id : name)" }
}

/// Request ids: 16 random bytes in hex.
public enum RequestID {
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return String(high, radix: 16).leftPadded(to: 16) + String(low, radix: 16).leftPadded(to: 16)
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
