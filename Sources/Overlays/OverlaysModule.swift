import Foundation
import HubCore
import HubStore
import Hummingbird
import Logging
import Metrics
import Realtime
import Registry
import ServiceLifecycle

/// OBS overlays with rotating keys, live captions and (with ``OverlayGRPCService``) the gRPC service.
public struct OverlaysModule: Sendable {
    public let keys: OverlayKeys
    let captions: CaptionHub
    let pages: PageCache
    let communities: CommunityDirectory
    let accessLog: AccessLog
    let writer: CaptionWriter
    let database: HubDatabase
    let bus: EventBus
    let realtime: RealtimeModule
    let serviceKeys: ServiceKeyValidator
    let captionRetention: Double
    let logger: Logger

    /// The hub history every captions topic keeps: the last 10 captions of the last 5 minutes.
    public static let historyPolicy = (prefix: CaptionHub.topicPrefix, capacity: CaptionHub.historyCount, maxAge: CaptionHub.historyAge)

    public init(configuration: HubConfiguration, database: HubDatabase, bus: EventBus, realtime: RealtimeModule, registry: RegistryModule,
                clock: any WallClock = SystemWallClock(), logger: Logger, metrics: any MetricsFactory) async throws {
        self.database = database
        self.bus = bus
        self.realtime = realtime
        self.logger = logger
        self.keys = OverlayKeys(database: database, clock: clock, gracePeriod: configuration.overlayGracePeriod)
        self.communities = CommunityDirectory(database: database)
        try await communities.load()
        self.writer = CaptionWriter(database: database, logger: logger, metrics: metrics)
        self.captions = CaptionHub(bus: bus, hub: realtime.hub, writer: writer, communities: communities, history: CaptionHistory())
        self.pages = PageCache(database: database, registry: registry.service)
        self.accessLog = AccessLog(database: database, logger: logger, retention: configuration.accessLogRetention)
        self.serviceKeys = ServiceKeyValidator(keys: configuration.serviceKeys)
        self.captionRetention = configuration.captionRetention
        // `?key=<overlay key>` on /events: that community's captions and transcriptions.
        let keys = self.keys
        realtime.channelAuth.addKeyResolver { key in try await keys.validate(key)?.channelIdentity }
    }

    public func addRoutes(to router: Router<HubRequestContext>, api: RouterGroup<HubRequestContext>) {
        OverlayController(keys: keys, captions: captions, pages: pages, accessLog: accessLog, serviceKeys: serviceKeys, logger: logger)
            .addRoutes(to: router, webSockets: realtime.webSockets)
        CommunitiesController(database: database, keys: keys, pages: pages, communities: communities, bus: bus).addRoutes(to: api)
    }

    /// Shows a caption on a community's overlays from another module (a transcriber): stored and broadcast like
    /// one posted to `POST /api/v1/internal/captions`, except that the caller publishes its own `transcription`
    /// event. The text is cut to the caption limit; an unknown community is a validation error.
    public func showCaption(_ caption: Caption) async throws {
        var caption = caption
        caption.text = String(caption.text.prefix(IncomingCaption.maxText))
        try await captions.ingest(caption, transcription: false)
    }

    /// Whether a community with this id exists.
    public func communityExists(_ id: Int64) async throws -> Bool {
        try await communities.exists(id)
    }

    /// The gRPC service (served by the composition root's gRPC server).
    public var grpcService: OverlayGRPCService {
        OverlayGRPCService(keys: keys, captions: captions)
    }

    public var services: [any Service] {
        [
            writer,
            CaptionForwarder(bus: bus, hub: realtime.hub, history: captions.history),
            CaptionCleaner(database: database, retention: captionRetention, logger: logger),
            OverlayBackground(keys: keys, pages: pages, communities: communities, accessLog: accessLog, bus: bus, maintenance: database.maintenance, logger: logger),
            OverlayKeyRotation(bus: bus, hub: realtime.hub, keys: keys, logger: logger),
        ]
    }
}

/// Scheduled key rotation, access-log retention, and page-cache invalidation announced by other instances.
struct OverlayBackground: Service {
    let keys: OverlayKeys
    let pages: PageCache
    let communities: CommunityDirectory
    let accessLog: AccessLog
    let bus: EventBus
    /// Scheduled rotation and access-log retention run on the instance holding the maintenance lease.
    let maintenance: MaintenanceGate
    let logger: Logger

    func run() async throws {
        let events = bus.subscribe(types: [CommunitiesController.sourcesChanged])
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await envelope in events.cancelOnGracefulShutdown() {
                    struct Changed: Decodable { let community_id: Int64 }
                    if let changed = try? JSONDecoder().decode(Changed.self, from: Data(envelope.payload.readableBytesView)) {
                        pages.invalidate(changed.community_id)
                    }
                }
            }
            group.addTask {
                var ticks = 0
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    do {
                        if maintenance.isHeld {
                            for community in try await keys.due() {
                                guard let rotation = try await keys.scheduledRotation(community) else { continue }
                                OverlayKeyRotation.announce(rotation, on: bus)
                                logger.notice("rotated overlay key on schedule", metadata: ["community_id": "\(community)"])
                            }
                            if ticks % 360 == 0 { try await accessLog.prune() }
                        }
                    } catch {
                        logger.warning("overlay maintenance failed", metadata: ["error": "\(error)"])
                    }
                    ticks += 1
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(10)) }
                }
            }
        }
    }
}
