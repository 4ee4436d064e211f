import Foundation
import HubCore
import HubStore
import Hummingbird
import Logging
import Realtime
import ServiceLifecycle

/// The public face of the registry: streams, streamers, users, API keys, feature flags, the audit log,
/// the cable, and the services that keep them current.
public struct RegistryModule: Sendable {
    public let service: RegistryService
    public let access: Access
    let flags: FeatureFlags
    let writeLimiter: RateLimiter
    let loginFailures: RateLimiter
    let realtime: RealtimeModule
    let logger: Logger

    public init(configuration: HubConfiguration, database: HubDatabase, bus: EventBus, realtime: RealtimeModule, logger: Logger) async throws {
        let secret = try TokenService.secret(configured: configuration.jwtSecret, dataDirectory: configuration.dataDirectory)
        if configuration.jwtSecret == nil, database.kind == .postgres {
            // Another instance on this database signs with its own data directory's secret unless told otherwise.
            logger.notice("login tokens are signed with this data directory's secret; give every instance on this database the same --jwt-secret (or data directory)")
        }
        let tokens = await TokenService(secret: secret)
        self.service = RegistryService(database: database, bus: bus, logger: logger)
        self.access = try await Access(database: database, tokens: tokens, passwords: Passwords(cost: UInt8(configuration.bcryptCost)), logger: logger)
        self.flags = FeatureFlags(database: database)
        self.writeLimiter = RateLimiter(limit: configuration.writeRateLimit)
        self.loginFailures = RateLimiter(limit: configuration.loginFailureLimit)
        self.realtime = realtime
        self.logger = logger
        let access = self.access
        realtime.channelAuth.setTokenResolver { credential in try await access.channelSession(for: credential).identity }
    }

    /// `/api/v1` with the registry's authentication and write limits, for other modules' routes too.
    public func apiGroup(_ router: Router<HubRequestContext>) -> RouterGroup<HubRequestContext> {
        authenticatedGroup(router, path: "api/v1")
    }

    /// A group of routes outside `/api/v1` that signs callers in the same way (a program's HLS output, say).
    public func authenticatedGroup(_ router: Router<HubRequestContext>, path: RouterPath) -> RouterGroup<HubRequestContext> {
        router.group(path).add(middleware: AuthMiddleware(access: access, writeLimiter: writeLimiter))
    }

    public func addRoutes(to router: Router<HubRequestContext>) {
        let api = apiGroup(router)
        StreamsController(service: service, access: access).addRoutes(to: api)
        UsersController(service: service, access: access, flags: flags, loginFailures: loginFailures).addRoutes(to: api)
        AdminController(service: service, access: access, flags: flags).addRoutes(to: api)
        StreamersController(service: service).addRoutes(to: api)
        OpenAPIController().addRoutes(to: api)
        CableController(service: service, access: access, hub: realtime.hub, logger: logger).addRoutes(to: router, webSockets: realtime.webSockets)
    }

    public var services: [any Service] {
        [
            RegistryBackground(service: service, access: access, hub: realtime.hub, logger: logger),
            // The cable also carries `resync` (events were lost beyond the backplane log: reload the list).
            EventsForwarder(bus: service.bus, hub: realtime.hub, topic: CableController.topic, types: RegistryEventType.cable.union(["resync"])),
            RateLimitSync(bus: service.bus, limiters: ["write": writeLimiter, "login_failures": loginFailures], logger: logger),
        ]
    }

    /// What the log and the front page say while there are no users.
    public static let firstAdminHint = """
        no users yet: create the first admin with \
        `streamhub user create --email you@example.org --role admin` (it asks for the password; \
        or pipe it in with --password-stdin), using the same --data-dir / STREAMHUB_DATABASE_URL as this server
        """

    /// Whether any user exists (the front page explains how to create the first admin when none does).
    public func hasUsers() async throws -> Bool {
        try await AccountStore.userCount(on: service.database.sql) > 0
    }

    /// Logs how to create the first admin when there are no users yet.
    public func greetIfEmpty() async {
        guard let count = try? await AccountStore.userCount(on: service.database.sql), count == 0 else { return }
        logger.notice("\(Self.firstAdminHint)")
    }
}

/// Recognises the caller on every /api/v1 request (a bad credential is a 401 even on routes that would
/// not need one), and limits writes per user or API key.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let access: Access
    let writeLimiter: RateLimiter

    func handle(_ request: Request, context: HubRequestContext, next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        // Signing in never fails over a stale token the client still sends.
        let path = request.uri.path
        if path.hasSuffix("/login") || path.hasSuffix("/signup") { return try await next(request, context) }
        if let principal = try await access.authenticate(request) {
            context.principal = principal
            context.logger[metadataKey: "actor"] = .string(principal.actor)
            if request.method != .get && request.method != .head && request.method != .options,
               let retry = writeLimiter.take(principal.kind.rawValue + ":" + principal.id) {
                throw HubError.tooManyRequests(retryAfterSeconds: retry)
            }
        }
        return try await next(request, context)
    }
}
