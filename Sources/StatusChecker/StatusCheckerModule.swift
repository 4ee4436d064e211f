import AsyncHTTPClient
import Foundation
import HLS
import HubCore
import HubStore
import Hummingbird
import Logging
import Metrics
import Registry
import ServiceLifecycle

/// Scheduled live/offline checks of every stream in the registry, check-now and check history.
public struct StatusCheckerModule: Sendable {
    public let scheduler: StatusScheduler
    let client: HTTPClient
    let registry: RegistryService
    let database: HubDatabase
    let enabled: Bool

    public init(configuration: HubConfiguration, database: HubDatabase, registry: RegistryModule, clock: any WallClock = SystemWallClock(),
                logger: Logger, metrics: any MetricsFactory) {
        let settings = configuration.status
        let client = GuardedFetcher.makeClient()
        let guardrail = SourceURLGuard(allowPrivate: configuration.allowPrivateSources)
        let probe = StatusProbe(
            fetcher: GuardedFetcher(client: client, guardrail: guardrail, userAgent: "StreamHub status checker"),
            guardrail: guardrail,
            ytDLP: YtDLPRunner(path: settings.ytDLPPath, slots: AsyncSemaphore(settings.ytDLPConcurrency)),
            timeout: .seconds(settings.timeout))
        self.client = client
        self.scheduler = StatusScheduler(registry: registry.service, database: database, probe: probe, settings: settings, clock: clock,
                                         instanceID: configuration.instanceID, logger: logger, metrics: metrics)
        self.registry = registry.service
        self.database = database
        self.enabled = settings.enabled
    }

    public func addRoutes(api: RouterGroup<HubRequestContext>) {
        StatusController(scheduler: scheduler, registry: registry, database: database).addRoutes(to: api)
    }

    public var services: [any Service] {
        (enabled ? [scheduler] : []) + [HTTPClientCloser(client: client)]
    }
}
