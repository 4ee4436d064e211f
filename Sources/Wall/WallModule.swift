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
    let registry: RegistryService
    let recorder: RecorderModule
    let logger: Logger

    public init(database: HubDatabase, bus: EventBus, registry: RegistryModule, recorder: RecorderModule, logger: Logger) {
        self.store = WallStore(database: database, bus: bus)
        self.registry = registry.service
        self.recorder = recorder
        self.logger = logger
    }

    public func addRoutes(api: RouterGroup<HubRequestContext>) {
        WallsController(store: store, registry: registry, recorder: recorder).addRoutes(to: api)
    }
}
