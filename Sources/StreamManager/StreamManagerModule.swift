import Foundation
import HubCore
import HubStore
import Hummingbird
import Logging
import Recorder
import Registry
import ServiceLifecycle

/// The Stream Manager: programs — layered scenes of recordings and streams, text, captions and slates —
/// rendered on the server by ffmpeg to a local HLS output (`/programs/{name}/live.m3u8`), with their REST
/// API under `/api/v1/programs` and the renderers that follow every change.
public struct StreamManagerModule: Sendable {
    public let store: ProgramStore
    public let renderers: ProgramRenderers
    let registry: RegistryService
    let recorder: RecorderModule
    let registryModule: RegistryModule

    public init(configuration: HubConfiguration, database: HubDatabase, bus: EventBus, registry: RegistryModule, recorder: RecorderModule,
                logger: Logger) {
        let store = ProgramStore(database: database, bus: bus)
        self.store = store
        self.registry = registry.service
        self.registryModule = registry
        self.recorder = recorder
        // ffmpeg reads recordings from this server itself, over loopback.
        let host = configuration.host == "0.0.0.0" || configuration.host.hasPrefix("/") ? "127.0.0.1" : configuration.host
        let selfURL = "http://\(host.contains(":") ? "[\(host)]" : host):\(configuration.port)"
        self.renderers = ProgramRenderers(
            store: store, bus: bus, dataDirectory: configuration.dataDirectory, selfURL: selfURL, logger: logger,
            runningRecording: { stream in
                guard let json = try? await recorder.runningRecordingsJSON(streamIDs: [stream]).first,
                      let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
                return object["id"] as? String
            })
    }

    public func addRoutes(to router: Router<HubRequestContext>, api: RouterGroup<HubRequestContext>) {
        ProgramsController(store: store, registry: registry, recorder: recorder, renderers: renderers).addRoutes(to: api)
        ProgramOutputController(renderers: renderers).addRoutes(to: registryModule.authenticatedGroup(router, path: "programs"))
    }

    public var services: [any Service] { [renderers] }
}
