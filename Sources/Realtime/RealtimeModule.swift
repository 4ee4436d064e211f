import HubCore
import Hummingbird
import Logging
import Metrics
import ServiceLifecycle

/// The public face of Realtime: the WebSocket hub every real-time feature shares, the `/events` channel
/// and the upstream event endpoint.
public struct RealtimeModule: Sendable {
    public let hub: WebSocketHub
    let bus: EventBus
    let configuration: HubConfiguration

    public init(configuration: HubConfiguration, bus: EventBus, clock: any WallClock = SystemWallClock(),
                historyPolicies: [(prefix: String, capacity: Int, maxAge: Double)] = [],
                logger: Logger, metrics: any MetricsFactory) {
        self.configuration = configuration
        self.bus = bus
        self.hub = WebSocketHub(maxQueuedBytes: configuration.webSocketMaxQueuedBytes, pingInterval: configuration.webSocketPingInterval,
                                historyPolicies: historyPolicies,
                                clock: clock, logger: logger, metrics: metrics)
    }

    public func addRoutes(to router: Router<HubRequestContext>) {
        EventsController(
            hub: hub, bus: bus, serviceKeys: ServiceKeyValidator(keys: configuration.serviceKeys),
            maxBodySize: configuration.maxBodySize, maxMessageSize: configuration.webSocketMaxFrameSize
        ).addRoutes(to: router)
    }

    /// Services that run inside the application: the bus-to-/events forwarder. The hub itself must shut
    /// down before the HTTP server (so clients get 1001) and is run by the composition root.
    public var services: [any Service] { [EventsForwarder(bus: bus, hub: hub)] }
}
