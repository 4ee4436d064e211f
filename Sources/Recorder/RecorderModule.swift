import AsyncHTTPClient
import Foundation
import HLS
import HubCore
import HubStore
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import Realtime
import Registry
import SQLKit
import ServiceLifecycle
import Synchronization

/// Records live HLS streams into a rewindable archive and serves them back; reports on the Stream
/// Manager's `state` and `preview` channels.
public struct RecorderModule: Sendable {
    public static let stateEvent = "recording_state"
    public static let exportEvent = "recording_export"
    /// The hub topic of `WS /api/stream/ws?target=state`.
    public static let stateTopic = "stream.state"
    public static let previewTopic = "stream.preview"

    public let supervisor: RecorderSupervisor
    let exporter: Exporter
    let client: HTTPClient
    let registry: RegistryService
    let realtime: RealtimeModule
    let bus: EventBus
    let configuration: HubConfiguration
    let logger: Logger
    public let retention: RetentionSweeper
    let stateSources = StateSources()
    let streamChannels = StreamChannels()
    /// Where the other instances answer: a segment on another instance's disk is fetched from it (`nil`:
    /// one instance, nothing to pass on).
    public let relay: InstanceRelay?
    /// HLS this server writes itself (`program://NAME/live.m3u8`), recorded from disk.
    public let localSources: LocalSources

    public init(configuration: HubConfiguration, database: HubDatabase, bus: EventBus, realtime: RealtimeModule, registry: RegistryModule,
                instances: InstanceDirectory? = nil, logger: Logger, metrics: any MetricsFactory) {
        let settings = configuration.recorder
        let client = GuardedFetcher.makeClient()
        let guardrail = SourceURLGuard(allowPrivate: configuration.allowPrivateSources)
        let store = SegmentStore(dataDirectory: configuration.dataDirectory, cacheBytes: settings.segmentCacheBytes)
        let local = LocalSources()
        self.localSources = local
        let supervisor = RecorderSupervisor(
            database: database, store: store, fetcher: GuardedFetcher(client: client, guardrail: guardrail, userAgent: "StreamHub recorder", local: local),
            guardrail: guardrail, settings: settings, instanceID: configuration.instanceID, bus: bus, logger: logger, metrics: metrics)
        self.supervisor = supervisor
        self.exporter = Exporter(database: database, store: store, index: supervisor.index, bus: bus, ffmpegPath: settings.ffmpegPath,
                                 slots: AsyncSemaphore(2), logger: logger)
        self.client = client
        self.relay = instances.map { InstanceRelay(instances: $0, client: client, instanceID: configuration.instanceID) }
        self.registry = registry.service
        self.realtime = realtime
        self.bus = bus
        self.configuration = configuration
        self.logger = logger
        self.retention = RetentionSweeper(cleaner: RetentionCleaner(supervisor: supervisor, interval: settings.retentionInterval, logger: logger))
    }

    public func addRoutes(to router: Router<HubRequestContext>, api: RouterGroup<HubRequestContext>) {
        RecordingsController(supervisor: supervisor, exporter: exporter, registry: registry, maxBodySize: configuration.maxBodySize).addRoutes(to: api)
        let playback = PlaybackController(supervisor: supervisor, relay: relay)
        playback.addRoutes(to: router)
        playback.addFastRoutes(to: realtime.fastRoutes)
        addStreamChannels(to: router)
    }

    /// `WS /api/stream/ws?target=state|preview`: the same callers as `GET /api/v1/recordings` (a signed-in
    /// viewer or better: JWT or API key, in `Authorization` or `?token=`); anyone else is closed with 4401
    /// (no or bad credentials) or 4403 (a key that may not read recordings).
    func addStreamChannels(to router: Router<HubRequestContext>) {
        let database = supervisor.database
        let supervisor = supervisor
        let stateSources = stateSources
        let extensions = streamChannels
        let channelAuth = realtime.channelAuth
        realtime.webSockets.add("/api/stream/ws") { uri, headers in
            let target = uri.queryParameters["target"].map(String.init) ?? "state"
            guard target == "state" || target == "preview" || extensions.targets().contains(target) else { return nil }
            let identity: ChannelIdentity
            switch await channelAuth.authenticate(uri: uri, headers: headers) {
            case .refused(let code, let reason): return HubWebSocketRoutes.refused(code: code, reason: reason)
            case .identity(let found): identity = found
            }
            guard Self.channelVisibility.admits(identity.audience) else {
                return HubWebSocketRoutes.refused(code: ChannelCloseCode.forbidden, reason: "recordings need a signed-in viewer, editor or admin")
            }
            // Other modules' channels (the Stream Manager's programs) come first: they claim what they know.
            for channel in extensions.all() {
                if let accepted = try await channel(target, uri, identity) { return accepted }
            }
            switch target {
            case "state":
                var frames = [Self.welcome("state")]
                let live = supervisor.snapshots()
                let rows = try await database.reader.raw("""
                    SELECT \(unsafeRaw: Recording.columns) FROM recordings ORDER BY created_at DESC LIMIT 1000
                    """).all()
                for row in rows.reversed() {
                    let stored = try Recording(row: row)
                    frames.append(WebSocketWire.textFrame(StateForwarder.stateUpdate(ByteBuffer(string: (live[stored.id] ?? stored).statePayload))))
                }
                // Other modules' current states (the Stream Manager's programs), as `stateUpdate` payloads.
                for source in stateSources.all() {
                    for payload in await source() { frames.append(WebSocketWire.textFrame(StateForwarder.stateUpdate(payload))) }
                }
                return HubWebSocketRoutes.Accepted(topic: Self.stateTopic, identity: identity, initialFrames: frames, replayHistory: false)
            case "preview":
                return HubWebSocketRoutes.Accepted(topic: Self.previewTopic, identity: identity, initialFrames: [Self.welcome("preview")],
                                                   replayHistory: false)
            default:
                return nil
            }
        }
        router.get("/api/stream/ws") { request, _ -> Response in
            let target = request.uri.queryParameters["target"].map(String.init) ?? "state"
            let targets = ["state", "preview"] + extensions.targets()
            guard targets.contains(target) else {
                throw HubError.badRequest("target must be one of " + targets.joined(separator: ", "), code: "invalid_target")
            }
            throw HubError(.upgradeRequired, code: "upgrade_required", message: "/api/stream/ws is a WebSocket endpoint; connect with a WebSocket client",
                           headers: [.upgrade: "websocket", .connection: "Upgrade"])
        }
    }

    /// The id of a running recording of `url`, starting one (under every rule of `POST /api/v1/recordings`:
    /// the source guard, the recording limit) when there is none — how other modules read a URL without
    /// fetching it themselves.
    public func record(url: String, by actor: String) async throws -> String {
        let trimmed = url.trimmingCharacters(in: .whitespaces)
        if let id = try await runningRecording(of: trimmed) { return id }
        let controller = RecordingsController(supervisor: supervisor, exporter: exporter, registry: registry, maxBodySize: configuration.maxBodySize)
        return try await controller.create(.init(url: trimmed), by: actor).id
    }

    /// The newest running (starting, recording or stalled) recording of `url`.
    private func runningRecording(of url: String) async throws -> String? {
        try await supervisor.database.reader.raw("""
            SELECT id FROM recordings WHERE source_url = \(bind: url) AND state IN ('starting', 'recording', 'stalled')
            ORDER BY created_at DESC LIMIT 1
            """).first().flatMap { try? $0.decode(column: "id", as: String.self) }
    }

    /// The id of a running recording of HLS this server writes itself (a ``LocalSources`` URL such as
    /// `program://evening/live.m3u8`), starting one when there is none. Only the server names such URLs.
    public func recordLocal(url: String, by actor: String) async throws -> String {
        guard localSources.path(for: url) != nil else { throw HubError.validation("\(url.prefix(80)) is not a local source") }
        if let id = try await runningRecording(of: url) { return id }
        let controller = RecordingsController(supervisor: supervisor, exporter: exporter, registry: registry, maxBodySize: configuration.maxBodySize)
        return try await controller.create(.init(url: url), by: actor, local: true).id
    }

    /// The recordings (as the API shows them) among these ids, for other modules that show them (the wall).
    public func recordingsJSON(ids: [String]) async throws -> [String] {
        var answers: [String] = []
        for id in Set(ids).sorted() where RecordingID.isValid(id) {
            if let recording = try await supervisor.recording(id) { answers.append(recording.json) }
        }
        return answers
    }

    /// The recordings of these registry streams that are running (starting, recording or stalled), as the
    /// API shows them: what a wall can rewind.
    public func runningRecordingsJSON(streamIDs: [Int64]) async throws -> [String] {
        guard !streamIDs.isEmpty else { return [] }
        let rows = try await supervisor.database.reader.raw("""
            SELECT id FROM recordings WHERE stream_id IN (\(unsafeRaw: streamIDs.map(String.init).joined(separator: ",")))
            AND state IN ('starting', 'recording', 'stalled') ORDER BY created_at DESC LIMIT 500
            """).all()
        return try await recordingsJSON(ids: try rows.map { try $0.decode(column: "id", as: String.self) })
    }

    /// Whether a recording with this id exists (running or not), for other modules that refer to one.
    public func recordingExists(_ id: String) async throws -> Bool {
        try await supervisor.recording(id) != nil
    }

    /// A recorded segment as another module reads it (a transcriber decoding its audio).
    public struct SegmentSource: Sendable, Equatable {
        public let sequence: Int
        /// Seconds since 1970 at which the segment's media starts.
        public let startsAt: Double
        public let duration: Double
        public let discontinuity: Bool
        /// What ffmpeg reads: the segment's path on this disk, or its URL through this server; an fMP4 segment's
        /// init section comes first (then the inputs are concatenated).
        public let inputs: [String]
    }

    /// A recording's state (`starting`, `recording`, `stalled`, `stopped`, `failed`), retention in seconds and
    /// error; `nil` when there is no such recording.
    /// Read from the row, which commits a recording's end together with its last segments: a recording seen
    /// `stopped` here has every segment in the index.
    public func recordingStatus(_ id: String) async throws -> (state: String, retention: Double, error: String?)? {
        guard RecordingID.isValid(id), let row = try await supervisor.database.sql.raw(
            "SELECT state, retention, error FROM recordings WHERE id = \(bind: id)").first() else { return nil }
        return (try row.decode(column: "state", as: String.self), try row.decode(column: "retention", as: Double.self),
                try row.decode(column: "error", as: String?.self))
    }

    /// Up to `limit` segments of a recording after our sequence `sequence`, oldest first.
    public func segments(of recording: String, after sequence: Int, limit: Int) async throws -> [SegmentSource] {
        guard RecordingID.isValid(recording) else { return [] }
        let rows = try await supervisor.database.reader.raw("""
            SELECT \(unsafeRaw: SegmentIndex.columns) FROM recording_segments WHERE recording_id = \(bind: recording) AND sequence > \(bind: sequence)
            ORDER BY sequence LIMIT \(bind: limit)
            """).all().map(SegmentIndex.segment)
        let store = supervisor.store
        let base = configuration.loopbackURL + "/recordings/" + recording + "/segments/"
        func input(_ name: String) -> String {
            if let path = store.path(recording, name), FileManager.default.fileExists(atPath: path) { return path }
            return base + name
        }
        return rows.map { segment in
            SegmentSource(sequence: segment.sequence, startsAt: segment.startsAt, duration: segment.duration, discontinuity: segment.discontinuity,
                          inputs: (segment.map.map { [input($0)] } ?? []) + [input(segment.fileName)])
        }
    }

    /// Our sequence of a recording's newest segment, if it has one.
    public func newestSegment(of recording: String) async throws -> Int? {
        guard RecordingID.isValid(recording) else { return nil }
        return try await supervisor.index.last(recording)?.sequence
    }

    /// A moment as the playback URLs take it: Unix seconds or `YYYYMMDDHHMMSS` (UTC).
    public static func parseTimestamp(_ text: String) -> Double? { PlaylistWindows.parseTimestamp(text) }

    /// The server path of a VOD window of a recording that starts with the segment playing at `moment`.
    public static func vodPath(recording: String, from moment: Double, minutes: Int) -> String {
        "/recordings/\(recording)/start/\(Int(moment.rounded(.down)))/\(minutes)/vod.m3u8"
    }

    /// Who may hold a state or preview channel: whoever may list recordings (any recording's events).
    static let channelVisibility = EventVisibility.recording("")

    /// Adds a source of current states for new `target=state` clients: each answer is one `stateUpdate`
    /// payload (`{"stream":{…},…}`). Live changes reach the channel by broadcasting on ``stateTopic``.
    public func addStateSource(_ source: @escaping @Sendable () async -> [ByteBuffer]) {
        stateSources.add(source)
    }

    /// A channel of `WS /api/stream/ws` added by another module: asked first, after the caller passed the
    /// channel's access rule (a signed-in viewer or better); it answers `nil` to leave the request to the
    /// next one (and last to the recordings' own `state` and `preview`).
    public typealias StreamChannel = @Sendable (_ target: String, _ uri: URI, _ identity: ChannelIdentity) async throws -> HubWebSocketRoutes.Accepted?

    /// Adds a channel for `targets` (besides `state` and `preview`, which it may also claim, e.g. for a
    /// query parameter of its own).
    public func addStreamChannel(targets: [String], _ channel: @escaping StreamChannel) {
        streamChannels.add(targets: targets, channel)
    }

    /// `{"type":"stateUpdate","payload":…}` around a state payload (text, not yet a frame).
    public static func stateUpdate(_ payload: ByteBuffer) -> ByteBuffer {
        StateForwarder.stateUpdate(payload)
    }

    public static func welcome(_ target: String) -> ByteBuffer {
        WebSocketWire.textFrame(ByteBuffer(string: JSONText.object([
            ("type", .string("welcome")), ("message", .string("Connected to the StreamHub \(target) channel")),
            ("timestamp", .int(Int(Timestamp.now() * 1000))),
        ])))
    }

    public var services: [any Service] {
        var services: [any Service] = [supervisor, retention.cleaner, StateForwarder(bus: bus, hub: realtime.hub)]
        if configuration.recorder.previewInterval > 0 {
            services.append(PreviewMaker(supervisor: supervisor, hub: realtime.hub, interval: configuration.recorder.previewInterval,
                                         ffmpegPath: configuration.recorder.ffmpegPath, logger: logger))
        }
        services.append(HTTPClientCloser(client: client))
        return services
    }
}

/// Runs one retention pass on demand (tests, the CLI).
public struct RetentionSweeper: Sendable {
    let cleaner: RetentionCleaner

    @discardableResult
    public func sweep(now: Double = Timestamp.now()) async throws -> Int {
        try await cleaner.sweep(now: now)
    }
}

/// Where the `target=state` channel gets other modules' current states for a new client.
final class StateSources: Sendable {
    private let sources = Mutex<[@Sendable () async -> [ByteBuffer]]>([])

    func add(_ source: @escaping @Sendable () async -> [ByteBuffer]) {
        sources.withLock { $0.append(source) }
    }

    func all() -> [@Sendable () async -> [ByteBuffer]] {
        sources.withLock { $0 }
    }
}

/// Other modules' channels on `WS /api/stream/ws`.
final class StreamChannels: Sendable {
    private let storage = Mutex<(targets: [String], channels: [RecorderModule.StreamChannel])>(([], []))

    func add(targets: [String], _ channel: @escaping RecorderModule.StreamChannel) {
        storage.withLock { $0.targets += targets.filter { !["state", "preview"].contains($0) }; $0.channels.append(channel) }
    }

    func targets() -> [String] { storage.withLock { $0.targets } }
    func all() -> [RecorderModule.StreamChannel] { storage.withLock { $0.channels } }
}
