import Foundation
import HubCore
import HubStore
import Hummingbird
import Logging
import Metrics
import Prometheus
import Discovery
import Overlays
import Realtime
import StatusChecker
import Recorder
import Registry
import ServiceLifecycle
import StreamManager
import Transcription
import Wall

/// The version `streamhub --version` prints and /health reports.
public let streamHubVersion = "0.1.0"

/// Everything `buildApplication(_:)` wires together. `app` is the Hummingbird application (tests drive it
/// with `app.test(…)`); ``runService()`` runs it and the hub in one ServiceGroup until SIGTERM or SIGINT.
public struct StreamHubApplication: Sendable {
    public let app: Application<RouterResponder<HubRequestContext>>
    public let configuration: HubConfiguration
    public let database: HubDatabase
    public let bus: EventBus
    public let realtime: RealtimeModule
    public let registry: RegistryModule
    public let discovery: DiscoveryModule
    public let status: StatusCheckerModule
    public let recorder: RecorderModule
    public let wall: WallModule
    public let streamManager: StreamManagerModule
    public let transcription: TranscriptionModule
    public let grpc: GRPCServerService
    /// Every HTTP route, as "METHOD /path/{param}" (the OpenAPI test compares them with the document).
    public let routes: [String]
    public let health: ServiceHealth
    public let metrics: PrometheusCollectorRegistry
    let logger: Logger

    /// Runs every service until SIGTERM or SIGINT, then shuts down gracefully: WebSockets are closed with
    /// 1001 first, then in-flight requests drain, the bus flushes, and the database closes. Anything still
    /// running after the configured shutdown timeout is cancelled.
    public func runService() async throws {
        let group = ServiceGroup(configuration: .init(
            // Shut down in reverse order: the hub (1001 to every client) before the HTTP server.
            services: [.init(service: app), .init(service: realtime.hub)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger
        ).with(maximumGracefulShutdownDuration: configuration.shutdownTimeout))
        do {
            try await group.run()
        } catch {
            await database.shutdown()
            throw error
        }
        await database.shutdown()
        logger.info("stopped")
    }

    /// Closes the database (tests call this after `app.test`).
    public func shutdown() async {
        await database.shutdown()
    }
}

extension ServiceGroupConfiguration {
    func with(maximumGracefulShutdownDuration duration: Duration) -> Self {
        var copy = self
        copy.maximumGracefulShutdownDuration = duration
        return copy
    }
}

/// Builds the whole application from one validated configuration: storage (migrated), event bus and
/// backplane, the real-time hub, every module's routes, and the services that run beside the server.
public func buildApplication(_ configuration: HubConfiguration, clock: any WallClock = SystemWallClock(), logger: Logger? = nil) async throws -> StreamHubApplication {
    var logger = logger ?? Logger(label: "streamhub")
    logger.logLevel = configuration.logLevel
    logger[metadataKey: "instance_id"] = .string(configuration.instanceID)

    try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)

    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.defaultDurationHistogramBuckets = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]
    let health = ServiceHealth()

    let database = try HubDatabase.open(configuration.database, logger: logger, metrics: factory)
    do {
        try await Migrator(database: database, migrations: allStreamHubMigrations, logger: logger).migrate()
    } catch {
        await database.shutdown()
        throw error
    }

    let backplane: any Backplane = database.kind == .postgres
        ? try PostgresBackplane(database: database, logger: logger, health: health)
        : InProcessBackplane()
    let bus = EventBus(instanceID: configuration.instanceID, backplane: backplane, logger: logger, metrics: factory)
    health.report("event_bus", .running, detail: backplane.isDistributed ? "postgres LISTEN/NOTIFY backplane" : "in-process")
    let realtime = RealtimeModule(configuration: configuration, bus: bus, clock: clock, historyPolicies: [OverlaysModule.historyPolicy],
                                  logger: logger, metrics: factory)

    let router = Router(context: HubRequestContext.self)
    router.add(middleware: RequestMetricsMiddleware(factory: factory, maxBodySize: configuration.maxBodySize,
                                                   largerBodies: ["/api/v1/images": ProgramImage.maxBytes]))
    router.add(middleware: ErrorMiddleware())
    let operations = OperationsAccess(configuration: configuration)
    HealthController(database: database, health: health, instanceID: configuration.instanceID, version: streamHubVersion, access: operations)
        .addRoutes(to: router)
    MetricsController(registry: registry, access: operations).addRoutes(to: router)
    realtime.addRoutes(to: router)
    let registryModule = try await RegistryModule(configuration: configuration, database: database, bus: bus, realtime: realtime, logger: logger)
    registryModule.addRoutes(to: router)
    let overlays = try await OverlaysModule(configuration: configuration, database: database, bus: bus, realtime: realtime,
                                            registry: registryModule, clock: clock, logger: logger, metrics: factory)
    let api = registryModule.apiGroup(router)
    overlays.addRoutes(to: router, api: api)
    let discovery = try await DiscoveryModule(configuration: configuration, database: database, bus: bus, registry: registryModule, health: health,
                                              logger: logger, metrics: factory)
    discovery.addRoutes(api: api)
    let status = StatusCheckerModule(configuration: configuration, database: database, registry: registryModule, clock: clock, logger: logger, metrics: factory)
    status.addRoutes(api: api)
    ClientAddress.trust(configuration.trustedProxies)
    let instances = InstanceDirectory(database: database, instanceID: configuration.instanceID, address: advertisedURL(configuration), logger: logger)
    let recorder = RecorderModule(configuration: configuration, database: database, bus: bus, realtime: realtime, registry: registryModule, instances: instances,
                                  logger: logger, metrics: factory)
    recorder.addRoutes(to: router, api: api)
    let wall = try WallModule(database: database, bus: bus, realtime: realtime, registry: registryModule, recorder: recorder, logger: logger)
    wall.addRoutes(to: router, api: api)
    let streamManager = StreamManagerModule(configuration: configuration, database: database, bus: bus, realtime: realtime, registry: registryModule, recorder: recorder,
                                            wall: wall, logger: logger, metrics: factory)
    streamManager.addRoutes(to: router, api: api)
    let programs = TranscriptionModule.Programs(exists: { await streamManager.programExists($0) }, outputURL: StreamManagerModule.outputURL)
    let transcription = TranscriptionModule(configuration: configuration, database: database, bus: bus, recorder: recorder, overlays: overlays,
                                            programs: programs, health: health, logger: logger, metrics: factory)
    transcription.addRoutes(api: api)
    await registryModule.greetIfEmpty()
    let routes = router.routes.map { route in
        "\(route.method.rawValue) " + route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            .reduce("") { $0 + "/" + $1 }.nonEmpty(or: "/")
    }

    let address = configuration.host.hasPrefix("/")
        ? BindAddress.unixDomainSocket(path: configuration.host)
        : BindAddress.hostname(configuration.host, port: configuration.port)
    let serverLogger = logger
    var services: [any Service] = [bus, instances]
    services.append(ScheduledBackups(backups: Backups(database: database, configuration: configuration),
                                     directory: configuration.backupDirectory ?? (configuration.dataDirectory as NSString).appendingPathComponent("backups"),
                                     interval: configuration.backupInterval, keep: configuration.backupKeep, logger: logger))
    services.append(MaintenanceLease(database: database, owner: configuration.instanceID, duration: configuration.jobLease, health: health,
                                     logger: logger, metrics: factory))
    services += realtime.services
    services += registryModule.services
    services += overlays.services
    services += discovery.services
    services += status.services
    services += recorder.services
    services += wall.services
    services += streamManager.services
    services += transcription.services
    let grpc = GRPCServerService(host: configuration.host, port: configuration.grpcPort, services: [overlays.grpcService],
                                 interceptors: [ServiceKeyInterceptor(keys: ServiceKeyValidator(keys: configuration.serviceKeys))], logger: logger)
    services.append(grpc)
    let app = Application(
        router: router,
        server: realtime.server,
        configuration: .init(address: address, serverName: "StreamHub/\(streamHubVersion)", backlog: 4096),
        services: services,
        onServerRunning: { channel in
            health.report("http", .running, detail: channel.localAddress.map { "\($0)" })
            serverLogger.info("listening", metadata: [
                "address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                "database": "\(configuration.database.redacted)",
            ])
        },
        logger: logger
    )
    return StreamHubApplication(app: app, configuration: configuration, database: database, bus: bus,
                                realtime: realtime, registry: registryModule, discovery: discovery, status: status, recorder: recorder, wall: wall, streamManager: streamManager, transcription: transcription, grpc: grpc, routes: routes,
                                health: health, metrics: registry, logger: logger)
}

/// The URL other instances reach this one at: `--advertise-url`, else the host and port (the machine's name
/// when listening on every address); none on a Unix socket.
func advertisedURL(_ configuration: HubConfiguration) -> String? {
    if let url = configuration.advertiseURL { return url }
    let host = configuration.host
    if host.hasPrefix("/") { return nil }
    let name = host == "0.0.0.0" || host == "::" ? ProcessInfo.processInfo.hostName : host
    return "http://\(name.contains(":") ? "[\(name)]" : name):\(configuration.port)"
}

/// Every module's migrations, in one list.
public let allStreamHubMigrations: [any Migration] = CoreMigrations.all + RegistryMigrations.all + OverlayMigrations.all + DiscoveryMigrations.all + RecorderMigrations.all + WallMigrations.all + ProgramMigrations.all + TranscriptionMigrations.all

extension String {
    fileprivate func nonEmpty(or fallback: String) -> String { isEmpty ? fallback : self }
}
