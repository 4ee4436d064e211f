import HubCore
import HubStore
import Hummingbird
import Logging
import Recorder
import Registry

/// The public face of the wall: walls (a grid of streams, recordings and HLS links, with audio focus) and
/// their REST API. Every change is a `wall_changed` event for signed-in viewers and the wall's displays.
public struct WallModule: Sendable {
    public let store: WallStore
    public let links: WallLinks
    let registry: RegistryService
    let recorder: RecorderModule
    let logger: Logger

    public init(database: HubDatabase, bus: EventBus, registry: RegistryModule, recorder: RecorderModule, logger: Logger) {
        self.store = WallStore(database: database, bus: bus)
        let links = WallLinks(database: database)
        self.links = links
        self.registry = registry.service
        // Invite and display links are credentials wherever a JWT or API key is (REST, ?token=, channels).
        registry.access.addScopedResolver(prefix: WallLinks.prefix) { token in
            try await links.link(for: token).map(WallLinks.principal(for:))
        }
        self.recorder = recorder
        self.logger = logger
    }

    public func addRoutes(api: RouterGroup<HubRequestContext>) {
        let controller = WallsController(store: store, links: links, registry: registry, recorder: recorder)
        controller.addRoutes(to: api)
        controller.addLinkRoutes(to: api)
    }
}
