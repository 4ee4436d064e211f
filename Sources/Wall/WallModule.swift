import HubCore
import HubStore
import Hummingbird
import Logging
import Realtime
import Recorder
import Registry
import ServiceLifecycle
import Synchronization

/// The public face of the wall: walls (a grid of streams, recordings and HLS links, with audio focus), their
/// REST API, and the pages people use — the front door, the wall display, its control page and the admin
/// page. Every change is a `wall_changed` event for signed-in viewers and the wall's displays.
public struct WallModule: Sendable {
    public let store: WallStore
    public let links: WallLinks
    let registryModule: RegistryModule
    let registry: RegistryService
    let recorder: RecorderModule
    let realtime: RealtimeModule
    let bus: EventBus
    let assets: WebAssets
    let logger: Logger
    let programPages = ProgramPages()

    public init(database: HubDatabase, bus: EventBus, realtime: RealtimeModule, registry: RegistryModule, recorder: RecorderModule,
                logger: Logger) throws {
        self.store = WallStore(database: database, bus: bus)
        let links = WallLinks(database: database)
        self.links = links
        self.registryModule = registry
        self.registry = registry.service
        // Invite and display links are credentials wherever a JWT or API key is (REST, ?token=, channels).
        registry.access.addScopedResolver(prefix: WallLinks.prefix) { token in
            try await links.link(for: token).map(WallLinks.principal(for:))
        }
        self.recorder = recorder
        self.realtime = realtime
        self.bus = bus
        self.assets = try WebAssets.load()
        self.logger = logger
    }

    public func addRoutes(to router: Router<HubRequestContext>, api: RouterGroup<HubRequestContext>) {
        let controller = WallsController(store: store, links: links, registry: registry, recorder: recorder, bus: bus)
        controller.addRoutes(to: api)
        controller.addLinkRoutes(to: api)
        PagesController(assets: assets, access: registryModule.access, links: links, store: store, registry: registryModule,
                        programPages: programPages).addRoutes(to: router)
    }

    /// Turns on `/programs/{name}/control` (the Stream Manager's control page, in the pages' look and under
    /// their session rules): `exists` says whether a program of that name exists.
    public func enableProgramPages(exists: @escaping @Sendable (String) async throws -> Bool) {
        programPages.exists.withLock { $0 = exists }
    }

    /// The relay that sends each display the changes of the streams and recordings its wall shows.
    public var services: [any Service] {
        [WallRelay(store: store, bus: bus, hub: realtime.hub, logger: logger)]
    }
}

/// Whether the program control page is on, and how it finds programs (set by the Stream Manager).
final class ProgramPages: Sendable {
    let exists = Mutex<(@Sendable (String) async throws -> Bool)?>(nil)
}
