import Foundation
import HubCore
import HubStore
import Hummingbird
import Logging
import Metrics
import Overlays
import Recorder
import ServiceLifecycle

/// Speech to text from the streams' own audio: transcribers follow recordings (or HLS links, recorded
/// first), decode each new segment's audio with ffmpeg, and feed it to an engine — the built-in
/// PocketSphinx or an operator's command — whose results become `transcription` and `wake_word` events,
/// community captions, and a stored, searchable transcript.
public struct TranscriptionModule: Sendable {
    public let store: TranscriptionStore
    public let supervisor: TranscriberSupervisor
    let engines: SpeechEngines
    let recorder: RecorderModule
    let overlays: OverlaysModule
    let database: HubDatabase
    let logger: Logger
    let programs: Programs?

    /// The Stream Manager's programs, as a transcriber reaches them: whether one exists, and the URL the
    /// recorder reads its output at.
    public struct Programs: Sendable {
        public let exists: @Sendable (String) async -> Bool
        public let outputURL: @Sendable (String) -> String

        public init(exists: @escaping @Sendable (String) async -> Bool, outputURL: @escaping @Sendable (String) -> String) {
            self.exists = exists
            self.outputURL = outputURL
        }
    }

    public init(configuration: HubConfiguration, database: HubDatabase, bus: EventBus, recorder: RecorderModule, overlays: OverlaysModule,
                programs: Programs? = nil, health: ServiceHealth?, logger: Logger, metrics: any MetricsFactory) {
        self.programs = programs
        let store = TranscriptionStore(database: database)
        let engines = SpeechEngines(settings: configuration.transcription, dataDirectory: configuration.dataDirectory)
        let context = TranscriptionContext(store: store, recorder: recorder, overlays: overlays, bus: bus, engines: engines,
                                           ffmpegPath: configuration.recorder.ffmpegPath, logger: logger, metrics: TranscriptionMetrics(factory: metrics))
        self.store = store
        self.engines = engines
        self.recorder = recorder
        self.overlays = overlays
        self.database = database
        self.logger = logger
        // Transcribers are leased like recordings, for as long.
        var settings = configuration.transcription
        settings.leaseDuration = configuration.recorder.leaseDuration
        self.supervisor = TranscriberSupervisor(database: database, context: context, settings: settings,
                                                instanceID: configuration.instanceID, health: health, metrics: metrics)
    }

    public func addRoutes(api: RouterGroup<HubRequestContext>) {
        TranscribersController(store: store, supervisor: supervisor, engines: engines, recorder: recorder, overlays: overlays, programs: programs)
            .addRoutes(to: api)
    }

    public var services: [any Service] {
        [supervisor, TranscriptSweeper(store: store, database: database, logger: logger)]
    }
}

/// Deletes transcript lines older than their recording's retention (on the maintenance lease holder).
struct TranscriptSweeper: Service {
    let store: TranscriptionStore
    let database: HubDatabase
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if database.maintenance.isHeld {
                do { try await store.sweep() } catch { logger.warning("transcript retention sweep failed", metadata: ["error": "\(error)"]) }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(60)) }
        }
    }
}

/// `streamhub transcriber list|start|stop`: changes straight in the database; a running server follows within
/// a third of the transcriber lease (10 s by default), so the CLI works with or without the server up.
public enum TranscriberAdmin {
    /// One line per transcriber: id, state, engine, recording, counters, error.
    public static func list(database: HubDatabase) async throws -> String {
        let rows = try await TranscriptionStore(database: database).list()
        guard !rows.isEmpty else { return "no transcribers" }
        return rows.map { t in
            "\(t.id)\t\(t.state.rawValue)\t\(t.engine)\trecording \(t.recordingID)\t\(t.utterances) utterances\t\(Int(t.audioSeconds)) s of audio"
                + (t.error.map { "\t\($0)" } ?? "")
        }.joined(separator: "\n")
    }

    /// Starts (`running`) or stops a transcriber; answers a line saying so.
    public static func setState(_ id: String, running: Bool, database: HubDatabase) async throws -> String {
        guard let changed = try await TranscriptionStore(database: database).setDesired(id, running: running) else {
            throw HubError.notFound("no transcriber with id '\(id.prefix(64))'")
        }
        return "transcriber \(changed.id): \(running ? "started" : "stopped") (a running server follows within 10 s)"
    }

    /// Creates a transcriber of a recording with the built-in engine (or `engine`), from the live edge.
    public static func create(recording: String, community: Int64?, wakeWords: [String], engine: String, language: String,
                              database: HubDatabase) async throws -> String {
        guard try await database.sql.raw("SELECT id FROM recordings WHERE id = \(bind: recording)").first() != nil else {
            throw HubError.notFound("no recording with id '\(recording.prefix(64))'")
        }
        let last = try await database.sql.raw("SELECT MAX(sequence) AS n FROM recording_segments WHERE recording_id = \(bind: recording)").first()?
            .decode(column: "n", as: Int?.self) ?? nil
        let transcriber = Transcriber(id: TranscriberID.make(), recordingID: recording, sourceURL: nil, language: language, communityID: community,
                                      wakeWords: wakeWords, engine: engine, position: (last ?? 0) - 1, createdBy: "cli", now: Timestamp.now())
        try await TranscriptionStore(database: database).insert(transcriber)
        return "transcriber \(transcriber.id) created for recording \(recording) (a running server starts it within 10 s)"
    }
}
