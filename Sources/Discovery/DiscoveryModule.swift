import Foundation
import HubCore
import HubStore
import Hummingbird
import Logging
import Metrics
import Registry
import ServiceLifecycle

/// Finds streams where people post them: link detection, location parsing, ignore lists, the ingest
/// endpoint, the Twitch chat and Discord gateway connectors, and the spreadsheet bridge.
public struct DiscoveryModule: Sendable {
    public let discovery: DiscoveryService
    let ignoreLists: IgnoreLists
    let registry: RegistryService
    let bus: EventBus
    let settings: HubConfiguration.DiscoverySettings
    let maxBodySize: Int
    let health: ServiceHealth
    let logger: Logger
    let metrics: any MetricsFactory
    let database: HubDatabase
    let instanceID: String
    let leaseDuration: Double

    public init(configuration: HubConfiguration, database: HubDatabase, bus: EventBus, registry: RegistryModule, health: ServiceHealth,
                logger: Logger, metrics: any MetricsFactory) async throws {
        let settings = configuration.discovery
        self.ignoreLists = IgnoreLists(database: database, bus: bus)
        try await ignoreLists.reload()
        self.discovery = DiscoveryService(
            registry: registry.service, database: database, detector: LinkDetector(extraHosts: settings.extraHosts),
            locations: LocationParser(places: LocationParser.parsePlaces(settings.places)), ignoreLists: ignoreLists,
            logger: logger, metrics: metrics)
        self.registry = registry.service
        self.bus = bus
        self.settings = settings
        self.maxBodySize = configuration.maxBodySize
        self.health = health
        self.logger = logger
        self.metrics = metrics
        self.database = database
        self.instanceID = configuration.instanceID
        self.leaseDuration = configuration.jobLease
    }

    public func addRoutes(api: RouterGroup<HubRequestContext>) {
        DiscoveryController(discovery: discovery, ignoreLists: ignoreLists, registry: registry, maxBodySize: maxBodySize).addRoutes(to: api)
    }

    public var services: [any Service] {
        var services: [any Service] = [IgnoreListsFollower(ignoreLists: ignoreLists, bus: bus, logger: logger)]
        // Each connector runs on one instance of the deployment at a time (a lease), however many are
        // configured with it: the others stand by and one takes over within a lease when the runner dies.
        if !settings.twitchChannels.isEmpty {
            let connector = TwitchChatConnector(
                settings: .init(url: settings.twitchIRCURL, channels: settings.twitchChannels, nick: settings.twitchNick, oauthToken: settings.twitchOAuthToken),
                discovery: discovery, health: health, logger: logger, metrics: metrics)
            services.append(leased("chat-connector:twitch", health: "twitch_chat") { try await connector.run() })
        }
        if let token = settings.discordToken {
            let connector = DiscordGatewayConnector(
                settings: .init(gatewayURL: settings.discordGatewayURL, token: token, channels: Set(settings.discordChannels), intents: settings.discordIntents),
                discovery: discovery, health: health, logger: logger, metrics: metrics)
            services.append(leased("chat-connector:discord", health: "discord_gateway") { try await connector.run() })
        }
        return services
    }

    func leased(_ lease: String, health name: String, _ body: @escaping @Sendable () async throws -> Void) -> LeasedRunner {
        LeasedRunner(database: database, name: lease, owner: instanceID, duration: leaseDuration, health: health, healthName: name,
                     logger: logger, body: body)
    }
}

/// Reloads the ignore lists when another instance changes them.
struct IgnoreListsFollower: Service {
    let ignoreLists: IgnoreLists
    let bus: EventBus
    let logger: Logger

    func run() async throws {
        for await envelope in bus.subscribe(types: [IgnoreLists.changedEvent]).cancelOnGracefulShutdown() where envelope.origin != bus.origin {
            do { try await ignoreLists.reload() } catch { logger.warning("reloading the ignore lists failed", metadata: ["error": "\(error)"]) }
        }
    }
}
