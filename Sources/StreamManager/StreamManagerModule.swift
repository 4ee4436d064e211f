import Foundation
import HubCore
import HubStore
import Hummingbird
import Logging
import Metrics
import NIOCore
import Realtime
import Recorder
import Registry
import ServiceLifecycle
import Wall

/// The Stream Manager: programs — layered scenes of recordings and streams, text, captions and slates —
/// rendered on the server by ffmpeg to a local HLS output (`/programs/{name}/live.m3u8`), with their REST
/// API under `/api/v1/programs` and the renderers that follow every change.
public struct StreamManagerModule: Sendable {
    public let store: ProgramStore
    public let renderers: ProgramRenderers
    let registry: RegistryService
    let recorder: RecorderModule
    let registryModule: RegistryModule
    let bus: EventBus
    let hub: WebSocketHub
    let guardrail: SourceURLGuard
    let wall: WallModule
    public let images: ImageStore

    public init(configuration: HubConfiguration, database: HubDatabase, bus: EventBus, realtime: RealtimeModule, registry: RegistryModule,
                recorder: RecorderModule, wall: WallModule, logger: Logger, metrics: any MetricsFactory) {
        self.bus = bus
        self.hub = realtime.hub
        self.guardrail = SourceURLGuard(allowPrivate: configuration.allowPrivateSources)
        let store = ProgramStore(database: database, bus: bus)
        self.store = store
        let images = ImageStore(database: database, ffmpeg: ChildProcess.locate("ffmpeg"))
        self.images = images
        self.registry = registry.service
        self.registryModule = registry
        self.recorder = recorder
        self.wall = wall
        // ffmpeg reads recordings from this server itself, over loopback.
        let selfURL = configuration.loopbackURL
        let runningRecording: @Sendable (Int64) async -> String? = { stream in
            guard let json = try? await recorder.runningRecordingsJSON(streamIDs: [stream]).first,
                  let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
            return object["id"] as? String
        }
        let walls = wall.store
        self.renderers = ProgramRenderers(
            store: store, bus: bus, dataDirectory: configuration.dataDirectory, selfURL: selfURL, logger: logger, metrics: metrics,
            runningRecording: runningRecording, images: images,
            // Several instances share a PostgreSQL database: each program renders on one of them.
            leases: database.kind == .postgres ? ProgramLeases(database: database, owner: configuration.instanceID, duration: configuration.jobLease) : nil,
            wallPicture: { name in
                // Each cell plays its recording, or its stream's running recording, through this server.
                guard let wall = try? await walls.get(name), wall.cellCount <= Program.maxWallTiles else { return nil }
                var sources: [String?] = []
                for cell in 1...wall.cellCount {
                    let content = wall.cells.first { $0.cell == cell }
                    var recording = content?.recordingID
                    if recording == nil, let stream = content?.streamID { recording = await runningRecording(stream) }
                    sources.append(recording.map { "\(selfURL)/recordings/\($0)/live.m3u8" })
                }
                return WallPicture(columns: wall.columns, rows: wall.rows, sources: sources)
            })
    }

    public func addRoutes(to router: Router<HubRequestContext>, api: RouterGroup<HubRequestContext>) {
        let renderers = renderers
        // A program's output can be recorded (and so transcribed) from disk: `program://NAME/live.m3u8`.
        recorder.localSources.register(scheme: "program", directory: renderers.directory)
        recorder.addStateSource { renderers.statePayloads() }
        ProgramChannels(store: store, renderers: renderers).register(on: recorder)
        let store = store
        wall.enableProgramPages { name in
            do { _ = try await store.get(name); return true } catch let error as HubError where error.status == .notFound { return false }
        }
        let programs = ProgramsController(store: store, registry: registry, recorder: recorder, renderers: renderers, guardrail: guardrail, walls: wall.store,
                                          images: images)
        programs.addRoutes(to: api)
        programs.addOutputRoutes(to: api)
        ImagesController(images: images).addRoutes(to: api)
        ProgramOutputController(renderers: renderers, relay: recorder.relay).addRoutes(to: registryModule.authenticatedGroup(router, path: "programs"))
    }

    /// The URL the recorder reads a program's output at (see ``RecorderModule/recordLocal(url:by:)``).
    public static func outputURL(_ program: String) -> String { "program://\(program)/live.m3u8" }

    /// Whether a program of this name exists.
    public func programExists(_ name: String) async -> Bool {
        (try? await store.get(name)) != nil
    }

    public var services: [any Service] {
        [renderers, ProgramStateForwarder(bus: bus, hub: hub), ProgramLayersForwarder(bus: bus, hub: hub), ProgramPreviewPump(renderers: renderers, hub: hub),
         ProgramChatForwarder(store: store, bus: bus, hub: hub)]
    }
}

/// Sends every `program_state` event (from any instance) to `WS /api/stream/ws?target=state` clients as a
/// `stateUpdate`, beside the recordings' (told apart by `payload.program`).
struct ProgramStateForwarder: Service {
    let bus: EventBus
    let hub: WebSocketHub

    func run() async throws {
        for await envelope in bus.subscribe(types: [ProgramRenderers.stateEvent]).cancelOnGracefulShutdown() {
            let frame = RecorderModule.stateUpdate(envelope.payload)
            hub.broadcast(text: frame, to: RecorderModule.stateTopic, visibility: envelope.visibility)
            // `?program=NAME` clients: the state of that program only.
            if let name = ProgramChannels.programName(in: envelope.payload, path: ["program", "name"]) {
                hub.broadcast(text: frame, to: ProgramChannels.stateTopic(name), visibility: envelope.visibility)
            }
        }
    }
}
