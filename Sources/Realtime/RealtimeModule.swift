import HubCore
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import ServiceLifecycle

/// The public face of Realtime: the WebSocket hub every real-time feature shares, the `/events` channel
/// and the upstream event endpoint.
public struct RealtimeModule: Sendable {
    public let hub: WebSocketHub
    /// The hub's WebSocket endpoints; every module adds its own.
    public let webSockets = HubWebSocketRoutes()
    /// GET routes answered from memory on the event loop; every module may add its own.
    public let fastRoutes = HubFastRoutes()
    /// Resolves WebSocket clients' credentials for every channel; the registry and overlays plug in.
    public let channelAuth: ChannelAuthenticator
    let bus: EventBus
    let configuration: HubConfiguration
    /// The hub topic of `WS /events`, for modules that send its clients events of their own.
    public static let eventsTopic = EventsController.topic

    public init(configuration: HubConfiguration, bus: EventBus, clock: any WallClock = SystemWallClock(),
                historyPolicies: [(prefix: String, capacity: Int, maxAge: Double)] = [],
                logger: Logger, metrics: any MetricsFactory) {
        self.configuration = configuration
        self.bus = bus
        self.channelAuth = ChannelAuthenticator(serviceKeys: ServiceKeyValidator(keys: configuration.serviceKeys))
        self.hub = WebSocketHub(maxQueuedBytes: configuration.webSocketMaxQueuedBytes, pingInterval: configuration.webSocketPingInterval,
                                historyPolicies: historyPolicies,
                                clock: clock, logger: logger, metrics: metrics)
    }

    public func addRoutes(to router: Router<HubRequestContext>) {
        EventsController(
            hub: hub, bus: bus, serviceKeys: ServiceKeyValidator(keys: configuration.serviceKeys), channelAuth: channelAuth,
            maxBodySize: configuration.maxBodySize
        ).addRoutes(to: router, webSockets: webSockets)
    }

    /// The HTTP server: HTTP/1.1 for every route, task-free WebSockets for the hub's endpoints.
    public var server: HTTPServerBuilder {
        .hub(routes: webSockets, fastRoutes: fastRoutes, hub: hub, maxFrameSize: configuration.webSocketMaxFrameSize)
    }

    /// Services that run inside the application: the bus-to-/events forwarder. The hub itself must shut
    /// down before the HTTP server (so clients get 1001) and is run by the composition root.
    public var services: [any Service] { [EventsForwarder(bus: bus, hub: hub, topic: EventsController.topic)] }
}
