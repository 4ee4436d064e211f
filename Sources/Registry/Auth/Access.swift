import Foundation
import HTTPTypes
import HubCore
import HubStore
import Hummingbird
import Logging
import Realtime
import SQLKit
import Synchronization

/// Who is calling: resolves login tokens (JWT) and API keys into a ``Principal``, with the checks every
/// request gets — signature and expiry, the logout denylist, disabled accounts and revoked keys — served
/// from short-lived in-memory caches so a busy read path does not pay a database round trip per request.
public final class Access: Sendable {

    let database: HubDatabase
    let tokens: TokenService
    let passwords: Passwords
    let logger: Logger
    /// How long a cached account answer is trusted (role changes, disables and revokes take effect within it).
    let cacheTTL: Double
    private let users: CredentialCache<Int64, UserRecord?>
    private let keys: CredentialCache<String, APIKeyRecord?>
    private let keyUses = Mutex<[Int64: Double]>([:])
    /// Revoked token ids and when each expires.
    private let denylist = Mutex<[String: Double]>([:])
    /// A real bcrypt hash, verified against when an email is unknown, so that answer takes as long as a wrong password.
    let decoyHash: String
    /// Resolves credentials of another module by prefix (the wall's `shw_` links); installed at build time.
    private let scopedResolvers = Mutex<[(prefix: String, resolve: @Sendable (String) async throws -> Principal?)]>([])

    /// Lets a module accept its own scoped credentials (e.g. wall links, `shw_…`) wherever a JWT or API key
    /// is accepted: REST, `?token=`, and the WebSocket channels. `resolve` answers `nil` for an unknown,
    /// expired or revoked credential (401).
    public func addScopedResolver(prefix: String, _ resolve: @escaping @Sendable (String) async throws -> Principal?) {
        scopedResolvers.withLock { $0.append((prefix, resolve)) }
    }

    init(database: HubDatabase, tokens: TokenService, passwords: Passwords, cacheTTL: Double = 5, logger: Logger) async throws {
        self.database = database
        self.tokens = tokens
        self.passwords = passwords
        self.cacheTTL = cacheTTL
        self.users = CredentialCache(ttl: cacheTTL)
        self.keys = CredentialCache(ttl: cacheTTL)
        self.logger = logger
        self.decoyHash = try await passwords.hash(RandomKey.hex(bytes: 16))
        try await reloadDenylist()
    }

    /// The principal behind the request's credentials: `Authorization: Bearer …`, `X-API-Key`, or (for GET
    /// requests, which clients without headers make) `?token=`, or the pages' session cookie. `nil` without
    /// credentials; 401 for bad ones.
    func authenticate(_ request: Request) async throws -> Principal? {
        var credential: String?
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw HubError.unauthorized("Authorization must be 'Bearer <token or API key>'", code: "invalid_token")
            }
            credential = parts[1].trimmingCharacters(in: .whitespaces)
        } else if let key = request.headers[HTTPField.Name("X-API-Key")!] {
            credential = key.trimmingCharacters(in: .whitespaces)
        } else if request.method == .get || request.method == .head, let token = request.uri.queryParameters["token"] {
            credential = String(token)
        } else if let session = PageSession.credential(cookieHeader: request.headers[.cookie]) {
            // The pages' session cookie: a write must come from one of our pages (see `PageSession`).
            if request.method != .get && request.method != .head && request.method != .options {
                guard PageSession.isFromPage(request) else {
                    throw HubError.forbidden("a write with the session cookie must come from a StreamHub page (\(PageSession.pageHeader) header, same origin)")
                }
            }
            credential = session
        }
        guard let credential else { return nil }
        return try await principal(for: credential)
    }

    /// Resolves one credential (a JWT or an API key); 401 when it is not valid now.
    public func principal(for credential: String) async throws -> Principal {
        try await resolve(credential).principal
    }

    /// The principal behind a credential, and for a JWT its verified claims.
    private func resolve(_ credential: String) async throws -> (principal: Principal, claims: LoginClaims?) {
        guard !credential.isEmpty, credential.utf8.count <= 4096 else { throw Self.invalid }
        if credential.hasPrefix("shk_") {
            return (try await apiKeyPrincipal(credential), nil)
        }
        if let resolver = scopedResolvers.withLock({ list in list.first { credential.hasPrefix($0.prefix) } }) {
            guard let principal = try await resolver.resolve(credential) else { throw Self.invalid }
            return (principal, nil)
        }
        guard credential.split(separator: ".", omittingEmptySubsequences: false).count == 3,
              let claims = await tokens.verify(credential)
        else { throw Self.invalid }
        guard !isRevoked(claims.jti.value), let userID = Int64(claims.sub.value) else { throw Self.invalid }
        guard let user = try await user(id: userID), !user.disabled else { throw Self.invalid }
        return (Principal(kind: .user, id: String(user.id), role: user.role.rawValue, name: user.email), claims)
    }

    /// A credential resolved once for a WebSocket channel: the principal (what REST would see) and the
    /// identity the hub routes by — its role as audience, the account as subject (so disabling it closes the
    /// socket), and for a JWT its id and expiry.
    public func channelSession(for credential: String) async throws -> (principal: Principal, identity: ChannelIdentity) {
        let (principal, claims) = try await resolve(credential)
        let subject = "\(principal.kind.rawValue):\(principal.id)"
        if let scope = principal.scope {
            // A display watches its wall only; invites read like a viewer.
            let audience: Audience = Role(rawValue: principal.role).map { .role($0) } ?? .display(wall: scope.wall)
            return (principal, ChannelIdentity(audience: audience, subject: subject, expiresAt: scope.expiresAt, name: principal.name))
        }
        guard let role = Role(rawValue: principal.role) else { throw Self.invalid }
        return (principal, ChannelIdentity(audience: .role(role), subject: subject, tokenID: claims?.jti.value,
                                           expiresAt: claims?.exp.value.timeIntervalSince1970, name: principal.name))
    }

    static let invalid = HubError.unauthorized("the token or API key is invalid, expired or revoked; sign in again", code: "invalid_token")

    func user(id: Int64, fresh: Bool = false) async throws -> UserRecord? {
        if fresh { users.forget(id) }
        let database = self.database
        return try await users.value(for: id) { try await AccountStore.user(id: id, on: database.reader) }
    }

    /// Drops a user from the cache after their role or status changed here.
    func forget(userID: Int64) {
        users.forget(userID)
    }

    func forgetKeys() {
        keys.forgetAll()
    }

    private func apiKeyPrincipal(_ key: String) async throws -> Principal {
        let hash = RandomKey.sha256(key)
        let now = Timestamp.now()
        let database = self.database
        let record = try await keys.value(for: hash, now: now) { try await AccountStore.apiKey(hash: hash, on: database.reader) }
        guard let record, !record.revoked else { throw Self.invalid }
        noteUse(of: record, at: now)
        return Principal(kind: .apiKey, id: String(record.id), role: record.role.rawValue, name: record.name)
    }

    /// Records `last_used_at`, at most once a minute per key, without making the request wait.
    private func noteUse(of key: APIKeyRecord, at now: Double) {
        let due = keyUses.withLock { uses -> Bool in
            if let last = uses[key.id], now - last < 60 { return false }
            uses[key.id] = now
            return true
        }
        guard due else { return }
        let database = self.database
        let logger = self.logger
        Task {
            do { try await database.sql.raw("UPDATE api_keys SET last_used_at = \(bind: now) WHERE id = \(bind: key.id)").run() } catch {
                logger.debug("could not record API key use", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Logout denylist

    func isRevoked(_ jti: String) -> Bool {
        denylist.withLock { $0[jti] != nil }
    }

    /// Revokes a token for the rest of its life: stored, so every instance (and a restart) honours it.
    func revoke(jti: String, expiresAt: Double) async throws {
        denylist.withLock { $0[jti] = expiresAt }
        let kind = database.kind
        try await database.sql.raw(kind == .postgres
            ? "INSERT INTO revoked_tokens (jti, expires_at) VALUES (\(bind: jti), \(bind: expiresAt)) ON CONFLICT (jti) DO NOTHING"
            : "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (\(bind: jti), \(bind: expiresAt))").run()
    }

    /// Applies a revocation announced by another instance.
    func noteRevoked(jti: String, expiresAt: Double) {
        denylist.withLock { $0[jti] = expiresAt }
    }

    /// Reloads the denylist from the database and prunes entries whose tokens have expired anyway.
    func reloadDenylist(now: Double = Timestamp.now()) async throws {
        try await database.sql.raw("DELETE FROM revoked_tokens WHERE expires_at < \(bind: now)").run()
        let rows = try await database.sql.raw("SELECT jti, expires_at FROM revoked_tokens").all()
        var fresh: [String: Double] = [:]
        for row in rows {
            fresh[try row.decode(column: "jti", as: String.self)] = try row.decode(column: "expires_at", as: Double.self)
        }
        denylist.withLock { current in
            current = current.filter { $0.value >= now }.merging(fresh) { a, _ in a }
        }
    }
}

extension HubRequestContext {
    /// The caller, who must have at least `role`: 401 without (valid) credentials, 403 with too small a role.
    @discardableResult
    public func require(_ role: Role) throws -> Principal {
        guard let principal else {
            throw HubError.unauthorized("sign in first: send 'Authorization: Bearer <token or API key>'", code: "unauthenticated")
        }
        guard let held = Role(rawValue: principal.role), held >= role else {
            throw HubError.forbidden("this needs the \(role.rawValue) role; you are \(principal.role)")
        }
        return principal
    }
}
