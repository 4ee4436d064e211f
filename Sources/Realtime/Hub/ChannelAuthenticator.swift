import HubCore
import Hummingbird
import HummingbirdCore
import NIOHTTP1
import Synchronization

/// Turns what a WebSocket client presents into a ``ChannelIdentity``, with the same rules as REST: every
/// channel that needs a caller asks this one object.
///
/// A client presents one credential:
/// - a login token (JWT) or API key: `Authorization: Bearer …`, or `?token=` for browsers;
/// - a service key: `X-Service-Key`, or `?key=`;
/// - another key a module understands (an overlay key, a display link): `?key=`;
/// - the pages' session cookie (see `PageSession`), from a page of this server only.
///
/// Realtime knows no accounts: the registry installs the token resolver and other modules add key
/// resolvers while the application is built, before the server accepts connections.
public final class ChannelAuthenticator: Sendable {
    /// Resolves a JWT or API key; throws when it is not valid now.
    public typealias TokenResolver = @Sendable (String) async throws -> ChannelIdentity
    /// Resolves a key of the module's own kind; `nil` when it is not one.
    public typealias KeyResolver = @Sendable (String) async throws -> ChannelIdentity?

    /// What a client presented, or why it may not connect.
    public enum Outcome: Sendable {
        case identity(ChannelIdentity)
        case refused(code: UInt16, reason: String)
    }

    private let serviceKeys: ServiceKeyValidator
    private let tokenResolver = Mutex<TokenResolver?>(nil)
    private let keyResolvers = Mutex<[KeyResolver]>([])

    public init(serviceKeys: ServiceKeyValidator) {
        self.serviceKeys = serviceKeys
    }

    /// Installs the resolver of login tokens and API keys (the registry's).
    public func setTokenResolver(_ resolver: @escaping TokenResolver) {
        tokenResolver.withLock { $0 = resolver }
    }

    /// Adds a resolver for `?key=` values (overlay keys, display links).
    public func addKeyResolver(_ resolver: @escaping KeyResolver) {
        keyResolvers.withLock { $0.append(resolver) }
    }

    public static let missing = Outcome.refused(
        code: ChannelCloseCode.unauthorized,
        reason: "sign in: send Authorization: Bearer <token or API key>, or ?token=, or a key as ?key=")
    public static let invalid = Outcome.refused(code: ChannelCloseCode.unauthorized, reason: "invalid, expired or revoked token or key")

    /// The identity behind the request's credentials, or the refusal to send.
    public func authenticate(uri: URI, headers: HTTPHeaders) async -> Outcome {
        if let header = headers.first(name: "Authorization") {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return Self.invalid }
            return await token(parts[1].trimmingCharacters(in: .whitespaces))
        }
        if let key = headers.first(name: "X-Service-Key") {
            return serviceKeys.isValid(key) ? .identity(Self.service) : Self.invalid
        }
        if let token = uri.queryParameters["token"] {
            return await self.token(String(token))
        }
        if let key = uri.queryParameters["key"] {
            return await self.key(String(key))
        }
        if let session = PageSession.credential(cookieHeader: headers[canonicalForm: "Cookie"].joined(separator: "; ")) {
            // A browser sends the pages' cookie on its own: only a page of this server may use it.
            guard PageSession.isSameOrigin(origin: headers.first(name: "Origin"), host: headers.first(name: "Host")) else {
                return .refused(code: ChannelCloseCode.forbidden, reason: "the session cookie is only accepted from StreamHub's own pages")
            }
            return await token(session)
        }
        return Self.missing
    }

    /// Resolves a JWT or API key.
    public func token(_ credential: String) async -> Outcome {
        guard !credential.isEmpty, credential.utf8.count <= 4096, let resolver = tokenResolver.withLock({ $0 }) else { return Self.invalid }
        do { return .identity(try await resolver(credential)) } catch { return Self.invalid }
    }

    /// Resolves a `?key=` value: a service key, or a key one of the modules knows.
    public func key(_ key: String) async -> Outcome {
        guard !key.isEmpty, key.utf8.count <= 4096 else { return Self.invalid }
        if serviceKeys.isValid(key) { return .identity(Self.service) }
        for resolver in keyResolvers.withLock({ $0 }) {
            do {
                if let identity = try await resolver(key) { return .identity(identity) }
            } catch {
                return Self.invalid
            }
        }
        return Self.invalid
    }

    static let service = ChannelIdentity(audience: .service, subject: "service", name: "service key")
}
