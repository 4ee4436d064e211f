import Foundation
import HubCore
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Subprocess
import Synchronization
import SystemPackage

/// Runs one ffmpeg per program that should be running, and keeps each in step with its program.
///
/// The database says what each program should do (``Program/State``); this service follows it: at start it
/// resumes every program that was running (a restart of StreamHub resumes the programs), and on every
/// `program_changed` event (from this instance or another) it loads the program and hands it to its
/// renderer. A renderer whose new plan differs only in text (a text layer's words, a caption) rewrites the
/// text files and ffmpeg keeps going; any other change starts a new ffmpeg (the HLS output continues with a
/// discontinuity). A crashed ffmpeg is restarted with backoff (1 s doubling to 30 s) and the error is in
/// the state.
///
/// With several instances on one database, each program renders on the one instance holding its lease
/// (``ProgramLeases``); the others keep its latest state from its `program_state` events.
public final class ProgramRenderers: Service, Sendable {
    let store: ProgramStore
    let bus: EventBus
    let logger: Logger
    /// `<data dir>/programs`: one directory per program, holding its HLS output and text files.
    public let directory: String
    let selfURL: String
    let ffmpegPath: String?
    let fontFile: String?
    let runningRecording: @Sendable (Int64) async -> String?
    let wallPicture: @Sendable (String) async -> WallPicture?
    let images: ImageStore?
    let metrics: any MetricsFactory
    /// `nil`: this instance renders every program that should run (tests of one instance).
    let leases: ProgramLeases?
    private let renderers = Mutex<[String: Renderer]>([:])
    /// The latest state of programs rendered on another instance (`stream` JSON of its `program_state`), and when it came.
    private let remoteStates = Mutex<[String: (json: String, at: Double)]>([:])
    /// The version of each program last handed to its renderer (or seen stopped).
    private let known = Mutex<[String: Int64]>([:])
    /// How often the database is compared with what the renderers follow: changes made without an event
    /// (the CLI, an event lost between instances) are picked up within this time.
    public static let reconcileInterval = Duration.seconds(2)
    private let captions = Mutex<[Int64: [CaptionLine]]>([:])
    /// New renderers for `run()` to start in its task group.
    private let starts: AsyncStream<Renderer>
    private let startContinuation: AsyncStream<Renderer>.Continuation

    init(store: ProgramStore, bus: EventBus, dataDirectory: String, selfURL: String, ffmpeg: String = "ffmpeg", logger: Logger,
         metrics: any MetricsFactory, runningRecording: @escaping @Sendable (Int64) async -> String?, images: ImageStore? = nil,
         leases: ProgramLeases? = nil, wallPicture: @escaping @Sendable (String) async -> WallPicture? = { _ in nil }) {
        self.leases = leases
        self.wallPicture = wallPicture
        self.images = images
        self.metrics = metrics
        self.store = store
        self.bus = bus
        self.logger = logger
        self.directory = (dataDirectory as NSString).appendingPathComponent("programs")
        self.selfURL = selfURL
        self.ffmpegPath = ChildProcess.locate(ffmpeg)
        self.fontFile = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
                         "/usr/share/fonts/dejavu/DejaVuSans.ttf"].first { FileManager.default.fileExists(atPath: $0) }
        self.runningRecording = runningRecording
        (starts, startContinuation) = AsyncStream.makeStream(of: Renderer.self)
    }

    /// The wall module's change event (a wall layer follows its wall).
    static let wallChangedEvent = "wall_changed"

    /// The bus event (and `/events` type) of a program's render state; `target=state` clients get it as a
    /// `stateUpdate`.
    public static let stateEvent = "program_state"

    /// `{"stream":{…the seed's fields…},"program":{"name"}}`: a `stateUpdate` payload.
    static func statePayload(_ name: String, _ state: RenderState) -> String {
        statePayload(name, json: state.json)
    }

    static func statePayload(_ name: String, json: String) -> String {
        "{\"stream\":\(json),\"program\":{\"name\":\(JSONText.render(.string(name)))}}"
    }

    /// Per-program gauges on `/metrics`: `streamhub_program_live`, `_fps`, `_frames`, `_dropped_frames`,
    /// `_restarts`, `_live_changes`, `_speed` (labelled `program`).
    func recordMetrics(_ name: String, _ state: RenderState) {
        let dimensions = [("program", name)]
        Gauge(label: "streamhub_program_live", dimensions: dimensions, factory: metrics).record(state.isLive ? 1 : 0)
        Gauge(label: "streamhub_program_fps", dimensions: dimensions, factory: metrics).record(state.fps)
        Gauge(label: "streamhub_program_frames", dimensions: dimensions, factory: metrics).record(state.frameCount)
        Gauge(label: "streamhub_program_dropped_frames", dimensions: dimensions, factory: metrics).record(state.droppedFrames)
        Gauge(label: "streamhub_program_restarts", dimensions: dimensions, factory: metrics).record(state.restarts)
        Gauge(label: "streamhub_program_live_changes", dimensions: dimensions, factory: metrics).record(state.liveChanges)
        Gauge(label: "streamhub_program_speed", dimensions: dimensions, factory: metrics).record(state.speed)
        Gauge(label: "streamhub_program_bitrate_kbps", dimensions: dimensions, factory: metrics).record(state.bitrate)
        Gauge(label: "streamhub_program_outputs", dimensions: dimensions, factory: metrics).record(state.outputs.count)
    }

    /// An RTMP output failed to connect or write (the fifo retries it a second later).
    func outputFailed(_ name: String) {
        Counter(label: "streamhub_program_output_failures_total", dimensions: [("program", name)], factory: metrics).increment()
    }

    /// The current state of every program (rendered here or, as last heard, on another instance), as
    /// `stateUpdate` payloads.
    func statePayloads() -> [ByteBuffer] {
        var names = Set(renderers.withLock { $0.keys })
        names.formUnion(freshRemoteStates().keys)
        return names.sorted().map { ByteBuffer(string: statePayload($0)) }
    }

    /// A remote state older than this is of an instance that stopped telling (the holder publishes every second while live).
    static let remoteStateLifetime = 5.0

    private func freshRemoteStates(now: Double = Date().timeIntervalSince1970) -> [String: String] {
        remoteStates.withLock { $0 }.filter { now - $0.value.at < Self.remoteStateLifetime }.mapValues(\.json)
    }

    /// Keeps the state another instance published for a program it renders.
    func heard(state payload: ByteBuffer, from origin: String) {
        guard origin != bus.origin,
              let object = try? JSONSerialization.jsonObject(with: Data(payload.readableBytesView)) as? [String: Any],
              let name = (object["program"] as? [String: Any])?["name"] as? String, let stream = object["stream"],
              let data = try? JSONSerialization.data(withJSONObject: stream, options: [.sortedKeys]) else { return }
        let json = String(decoding: data, as: UTF8.self)
        remoteStates.withLock { states in
            if states.count > 10_000 { states.removeAll() }
            states[name] = (json, Date().timeIntervalSince1970)
        }
    }

    /// A program's `stateUpdate` payload: its state here, or as last heard from the instance rendering it.
    func statePayload(_ name: String, targetFPS: Int = 0) -> String {
        Self.statePayload(name, json: stateJSON(name, targetFPS: targetFPS))
    }

    func requireFFmpeg() async throws {
        guard ffmpegPath != nil else {
            throw HubError.unavailable("ffmpeg is not installed on this server; install it (apt-get install ffmpeg) and restart StreamHub")
        }
    }

    /// The render state of a program as JSON (the seed's `payload.stream` shape): its renderer's here, else
    /// the state the instance rendering it last published (within ``remoteStateLifetime``).
    func stateJSON(_ name: String, targetFPS: Int = 0) -> String {
        let local = renderers.withLock { $0[name] }
        if let local, local.program != nil || leases == nil { return local.state.json }
        if let remote = freshRemoteStates()[name] { return remote }
        return local?.state.json ?? RenderState(targetFPS: targetFPS).json
    }

    public func state(_ name: String) -> RenderState? {
        renderers.withLock { $0[name] }?.state
    }

    /// The programs rendering now, with their preview files by width (narrowest first).
    func livePreviews() -> [(name: String, files: [(width: Int, height: Int, path: String)])] {
        renderers.withLock { $0 }.compactMap { name, renderer in
            guard let program = renderer.program, renderer.state.isLive else { return nil }
            let files = RenderPlan.previewSizes(program).map { ($0.width, $0.height, RenderPlan.previewFile(in: "\(directory)/\(name)", width: $0.width)) }
            return (name, files)
        }
    }

    public func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let events = bus.subscribe(types: [ProgramStore.changedEvent, "caption", Self.wallChangedEvent, Self.stateEvent])
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for program in try await self.store.list() where program.state != .stopped { await self.follow(program.name, program) }
                } catch {
                    self.logger.error("could not load programs to resume", metadata: ["error": "\(error)"])
                }
                for await envelope in events.cancelOnGracefulShutdown() {
                    if envelope.type == Self.stateEvent {
                        self.heard(state: envelope.payload, from: envelope.origin)
                        continue
                    }
                    guard let object = try? JSONSerialization.jsonObject(with: Data(envelope.payload.readableBytesView)) as? [String: Any] else { continue }
                    if envelope.type == Self.wallChangedEvent {
                        // A wall a program shows changed: its tiles follow (a new source is a live change).
                        guard let wall = object["wall"] as? String else { continue }
                        for (name, renderer) in self.renderers.withLock({ $0 }) {
                            if let program = renderer.program, program.layers.contains(where: { $0.kind == .wall && $0.wall == wall }) {
                                await self.follow(name, program, keepVersion: true)
                            }
                        }
                        continue
                    }
                    if envelope.type == "caption" {
                        if let community = envelope.visibility.community, let text = object["text"] as? String {
                            await self.caption(text, final: object["is_final"] as? Bool ?? true, community: community)
                        }
                        continue
                    }
                    guard let name = object["program"] as? String, let program = await self.load(name) else { continue }
                    await self.follow(name, program)
                }
            }
            group.addTask {
                while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: Self.reconcileInterval) })) != nil {
                    await self.reconcile()
                }
            }
            if let leases {
                group.addTask {
                    // Held leases are renewed (a lost one stops its renderer); programs rendered elsewhere are
                    // tried again, so one instance takes a program over when its holder dies.
                    while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: leases.interval) })) != nil {
                        for name in leases.heldPrograms {
                            let renderer = self.renderers.withLock { $0[name] }
                            if await leases.renew(name) {
                                // Renewed after a spell without the database that stopped it: it renders again.
                                if renderer?.program == nil, let program = await self.load(name) { await self.follow(name, program, keepVersion: true) }
                            } else if renderer?.program != nil {
                                // Stopped here first (without asking the database, which may be what failed).
                                self.logger.warning("lost a program's lease; stopping it here", metadata: ["program": "\(name)"])
                                renderer?.want(nil, recordings: [:])
                            }
                        }
                        for name in leases.waitingPrograms {
                            if let program = await self.load(name) { await self.follow(name, program, keepVersion: true) }
                        }
                    }
                }
            }
            group.addTask {
                // `program_state`: on every change of a program's render state, and every second while it is live.
                var last: [String: RenderState] = [:]
                while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: .seconds(1)) })) != nil {
                    for (name, renderer) in self.renderers.withLock({ $0 }) {
                        if renderer.state.isLive { renderer.measureBitrate(in: "\(self.directory)/\(name)") }
                        // Captions that fade: their text is rewritten as lines grow old.
                        if renderer.program?.layers.contains(where: { $0.kind == .captions && $0.style.fadeSeconds > 0 }) == true { renderer.refreshText() }
                        let state = renderer.state
                        guard state.isLive || last[name] != state else { continue }
                        // A renderer standing by for the instance that renders the program says nothing.
                        guard state.isLive || last[name] != nil || self.rendersHere(name) else { continue }
                        last[name] = state
                        self.recordMetrics(name, state)
                        self.bus.publish(type: Self.stateEvent, payload: ByteBuffer(string: Self.statePayload(name, state)), visibility: .viewers)
                    }
                }
            }
            group.addTask {
                // On shutdown each ffmpeg is stopped here; the database keeps the programs running, so the
                // next start resumes them.
                try? await gracefulShutdown()
                self.startContinuation.finish()
                for renderer in self.renderers.withLock({ Array($0.values) }) { renderer.stop() }
                // Another instance takes the programs over at once.
                await self.leases?.releaseAll()
            }
            for await renderer in starts { group.addTask { await renderer.run() } }
            await group.waitForAll()
        }
    }

    /// Follows every program whose version differs from the one its renderer has.
    func reconcile() async {
        guard let rows = try? await store.database.sql.raw("SELECT name, version FROM programs").all() else { return }
        var versions: [String: Int64] = [:]
        for row in rows {
            if let name = try? row.decode(column: "name", as: String.self), let version = try? row.decode(column: "version", as: Int64.self) {
                versions[name] = version
            }
        }
        let known = self.known.withLock { $0 }
        for (name, version) in versions where known[name] != version {
            if let program = await load(name) { await follow(name, program) }
        }
        for name in known.keys where versions[name] == nil {
            await follow(name, nil)
        }
        // A stream's recording may start (or end) after the program looked: stream sources and walls are
        // looked up again, and a feed switches when the answer changed (no restart).
        for (name, renderer) in renderers.withLock({ $0 }) {
            if let program = renderer.program, program.layers.contains(where: { $0.streamID != nil || $0.kind == .wall }) {
                await follow(name, program, keepVersion: true)
            }
        }
    }

    /// The program as stored now: `.some(nil)` when it is gone, `nil` when the database could not say (a
    /// hiccup must never read as a deletion, which would stop the program and remove its output).
    func load(_ name: String) async -> Program?? {
        do {
            return .some(try await store.get(name))
        } catch let error as HubError where error.status == .notFound {
            return .some(nil)
        } catch {
            logger.warning("could not load a program; keeping it as it runs", metadata: ["program": "\(name)", "error": "\(error)"])
            return nil
        }
    }

    /// Hands a program's latest version (or its deletion, `nil`) to its renderer, creating one as needed.
    func follow(_ name: String, _ program: Program?, keepVersion: Bool = false) async {
        if !keepVersion { known.withLock { $0[name] = program?.version } }
        let recordings = await sourceRecordings(program)
        var walls: [Int64: WallPicture] = [:]
        for layer in program?.layers ?? [] where layer.kind == .wall {
            if let wall = layer.wall, let picture = await wallPicture(wall) { walls[layer.id] = picture }
        }
        // Image layers read their image from a copy on disk, shared by every program (written once from the database).
        var imageFiles: [Int64: String] = [:]
        for layer in program?.layers ?? [] where layer.kind == .image {
            if let id = layer.imageID, let path = await images?.file(id, in: "\(directory)/_images") { imageFiles[layer.id] = path }
        }
        var wanted = program.flatMap { $0.state == .stopped ? nil : $0 }
        if let leases {
            // Rendered on the instance holding its lease; here an idle renderer (if any) stands by.
            if wanted != nil, !(await leases.take(name)) {
                wanted = nil
            } else if wanted == nil {
                await leases.release(name)
            }
        }
        let renderer = renderers.withLock { renderers -> Renderer? in
            if let existing = renderers[name] { return existing }
            guard let wanted else { return nil }
            let renderer = Renderer(name: name, owner: self, targetFPS: wanted.fps)
            renderers[name] = renderer
            return renderer
        }
        guard let renderer else { return }
        if renderer.isNew { startContinuation.yield(renderer) }
        renderer.want(wanted, recordings: recordings, walls: walls, images: imageFiles, deleted: program == nil)
    }

    /// Whether this instance renders a program's output now (always, without leases).
    func rendersHere(_ name: String) -> Bool {
        leases?.isHeld(name) ?? true
    }

    /// The recording each stream source layer plays: the stream's running recording.
    func sourceRecordings(_ program: Program?) async -> [Int64: String] {
        var result: [Int64: String] = [:]
        for layer in program?.layers ?? [] where layer.kind == .source {
            if let stream = layer.streamID, let recording = await runningRecording(stream) { result[layer.id] = recording }
        }
        return result
    }

    /// A caption of a community: every renderer showing it rewrites its captions text (no restart).
    func caption(_ text: String, final: Bool, community: Int64) async {
        let now = Date().timeIntervalSince1970
        captions.withLock { all in
            var lines = all[community] ?? []
            // An interim line replaces the previous interim one, as the overlay page does.
            if lines.last?.interim == true { lines.removeLast() }
            lines.append(CaptionLine(text: text, at: now, interim: !final))
            all[community] = Array(lines.suffix(5))
        }
        for renderer in renderers.withLock({ Array($0.values) }) { renderer.refreshText() }
    }

    func captionLines() -> [Int64: [CaptionLine]] {
        captions.withLock { $0 }
    }

    func renderEnded(_ name: String, _ renderer: Renderer) {
        renderers.withLock { renderers in
            if renderers[name] === renderer { renderers.removeValue(forKey: name) }
        }
    }

    /// One program's ffmpeg, restarted when its plan changes or it dies.
    final class Renderer: Sendable {
        let name: String
        let owner: ProgramRenderers
        private let shared: Mutex<Shared>
        /// Where a change is announced: the wake-up stream of the current ffmpeg run (a fresh one per run,
        /// since a stream whose reader was cancelled is finished for good).
        private let waker = Mutex<AsyncStream<Void>.Continuation?>(nil)

        struct Shared {
            var started = false
            var desired: Program?
            var recordings: [Int64: String] = [:]
            /// What each wall layer's wall shows now.
            var walls: [Int64: WallPicture] = [:]
            /// The file each image layer shows.
            var images: [Int64: String] = [:]
            var state: RenderState
            var stopping = false
            /// The program was deleted: its output goes once its ffmpeg has stopped.
            var deleted = false
        }

        init(name: String, owner: ProgramRenderers, targetFPS: Int) {
            self.name = name
            self.owner = owner
            self.shared = Mutex(Shared(state: RenderState(targetFPS: targetFPS)))
        }

        private func wake() {
            _ = waker.withLock { $0?.yield() }
        }

        /// A new stream of wake-ups for one run. It starts with one, so a change that came in while the run
        /// was being set up is looked at too.
        private func makeWakes() -> AsyncStream<Void> {
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            continuation.yield()
            waker.withLock { waker in
                waker?.finish()
                waker = continuation
            }
            return stream
        }

        /// The output bitrate from the newest HLS segments: their bytes over their duration (ffmpeg's own
        /// figure is "N/A" for the HLS and tee muxers, which write no single file).
        func measureBitrate(in directory: String) {
            guard let playlist = try? String(contentsOfFile: "\(directory)/live.m3u8", encoding: .utf8) else { return }
            var seconds = 0.0, bytes = 0, duration: Double?
            for line in playlist.split(separator: "\n") {
                if line.hasPrefix("#EXTINF:") {
                    duration = Double(line.dropFirst(8).prefix { $0 != "," })
                } else if !line.hasPrefix("#"), let length = duration,
                          let size = (try? FileManager.default.attributesOfItem(atPath: "\(directory)/\(line)"))?[.size] as? Int {
                    seconds += length
                    bytes += size
                    duration = nil
                }
            }
            guard seconds > 0 else { return }
            update { $0.bitrate = Double(bytes) * 8 / 1000 / seconds }
        }

        /// The program as this renderer follows it (`nil` while it should not run).
        var program: Program? { shared.withLock { $0.desired } }

        var isNew: Bool { shared.withLock { state in defer { state.started = true }; return !state.started } }
        var state: RenderState { shared.withLock { $0.state } }

        func want(_ program: Program?, recordings: [Int64: String], walls: [Int64: WallPicture] = [:], images: [Int64: String] = [:], deleted: Bool = false) {
            shared.withLock { state in
                state.desired = program
                state.recordings = recordings
                state.walls = walls
                state.images = images
                state.deleted = deleted
                if let program { state.state.targetFPS = program.fps; state.state.isPaused = program.state == .paused }
            }
            wake()
        }

        func refreshText() { wake() }

        func stop() {
            shared.withLock { $0.stopping = true; $0.desired = nil }
            wake()
            // A renderer waiting for changes has its wake-up stream finished, so it sees `stopping`.
            _ = waker.withLock { $0?.finish() }
        }

        private func update(_ change: (inout RenderState) -> Void) {
            shared.withLock { change(&$0.state) }
        }

        /// The plan for what is wanted now, or `nil` when the program should not run.
        private func currentPlan(controlPort: Int) -> RenderPlan? {
            let (program, recordings, walls, images) = shared.withLock { ($0.desired, $0.recordings, $0.walls, $0.images) }
            guard let program else { return nil }
            var environment = RenderPlan.Environment(
                directory: "\(owner.directory)/\(name)", selfURL: owner.selfURL, fontFile: owner.fontFile, recordingForLayer: recordings,
                captions: owner.captionLines(), controlPort: controlPort)
            environment.wallGrids = walls.mapValues { ($0.columns, $0.rows) }
            environment.imageFiles = images
            return RenderPlan.make(program, paused: program.state == .paused, environment: environment)
        }

        /// Until shutdown: renders while the program should run, and waits for the next change while it
        /// should not (a stopped program keeps its idle renderer, so a start right after a stop is never lost).
        func run() async {
            defer { owner.renderEnded(name, self) }
            await withDiscardingTaskGroup { group in
                await render(feeding: &group)
                for feed in feeds.withLock({ Array($0.values) }) { feed.stop() }
            }
        }

        /// The wall tiles' feeds, by pipe path; they outlive an ffmpeg run (a restart reopens the same pipes).
        private let feeds = Mutex<[String: TileFeed]>([:])
        private let slates = Mutex<[String: [UInt8]]>([:])

        /// Starts the feeds `plan` needs (in `group`) and stops those it no longer does.
        private func syncFeeds(_ plan: RenderPlan, _ group: inout DiscardingTaskGroup) async {
            guard let ffmpeg = owner.ffmpegPath else { return }
            let wanted = Dictionary(uniqueKeysWithValues: plan.tiles.map { ($0.fifo, $0) })
            let stale = feeds.withLock { feeds -> [TileFeed] in
                let gone = feeds.filter { path, feed in
                    wanted[path].map { $0.width != feed.width || $0.height != feed.height || $0.audio != feed.audio || $0.crop != feed.crop } ?? true
                }
                for path in gone.keys { feeds.removeValue(forKey: path) }
                return Array(gone.values)
            }
            for feed in stale { feed.stop() }
            for (path, tile) in wanted where feeds.withLock({ $0[path] }) == nil {
                let key = "\(tile.width)x\(tile.height)"
                var slate = slates.withLock { $0[key] }
                if slate == nil, !tile.audio {
                    let made = await TileFeed.slateFrame(width: tile.width, height: tile.height, ffmpeg: ffmpeg, fontFile: owner.fontFile)
                    slates.withLock { $0[key] = made }
                    slate = made
                }
                let feed = TileFeed(fifo: path, width: tile.width, height: tile.height, fps: shared.withLock { $0.desired?.fps ?? 30 }, ffmpeg: ffmpeg,
                                    slate: slate ?? [], logger: owner.logger, audio: tile.audio, crop: tile.crop)
                feeds.withLock { $0[path] = feed }
                group.addTask { await feed.run() }
            }
            applyTiles(plan)
        }

        /// Points every tile's feed at what its wall cell shows now (no restart: the feeds switch sources).
        func applyTiles(_ plan: RenderPlan) {
            let (walls, recordings, program) = shared.withLock { ($0.walls, $0.recordings, $0.desired) }
            let feeds = self.feeds.withLock { $0 }
            for tile in plan.tiles {
                if tile.cell == 0 {
                    // A source layer: its recording, or its stream's running recording.
                    let layer = program?.layers.first { $0.id == tile.layer }
                    let recording = layer?.recordingID ?? recordings[tile.layer]
                    // A rewound source plays the recording's live window that many seconds back.
                    let behind = layer?.rewindSeconds.map { "?behind=\($0)" } ?? ""
                    feeds[tile.fifo]?.show(recording.map { "\(owner.selfURL)/recordings/\($0)/live.m3u8" + behind })
                } else {
                    let sources = walls[tile.layer]?.sources ?? []
                    feeds[tile.fifo]?.show(tile.cell <= sources.count ? sources[tile.cell - 1] : nil)
                }
            }
        }

        /// Tiles' frames sent and how many were the "No signal" slate, by wall layer and cell.
        var tileCounts: [String: (written: Int, slate: Int)] {
            feeds.withLock { $0 }.reduce(into: [:]) { result, entry in result[(entry.key as NSString).lastPathComponent] = entry.value.counts }
        }

        private func render(feeding group: inout DiscardingTaskGroup) async {
            var backoff: Double = 1
            while !Task.isCancelled, !shared.withLock({ $0.stopping }) {
                guard let port = try? FreePort.pick(), let plan = currentPlan(controlPort: port), let ffmpeg = owner.ffmpegPath else {
                    update { state in
                        state.isLive = false
                        if self.owner.ffmpegPath == nil { state.error = "ffmpeg is not installed" }
                    }
                    if shared.withLock({ $0.deleted }) { try? FileManager.default.removeItem(atPath: "\(owner.directory)/\(name)") }
                    var wakes = makeWakes().makeAsyncIterator()
                    if shared.withLock({ $0.stopping }) { break }  // stop() came before this stream existed
                    _ = await wakes.next()  // the first wake-up is the one every stream starts with
                    _ = await wakes.next()
                    continue
                }
                do {
                    try FileManager.default.createDirectory(atPath: "\(owner.directory)/\(name)", withIntermediateDirectories: true)
                    try Self.write(plan.textFiles)
                } catch {
                    update { $0.error = "could not write the program's files: \(error)" }
                }
                // An ffmpeg left writing this output by a StreamHub that was killed (kill -9 leaves its children)
                // would fight the new one over the same files.
                let orphans = Orphans.kill(writingInto: "\(owner.directory)/\(name)/")
                if orphans > 0 { owner.logger.warning("stopped an ffmpeg left over by an earlier run", metadata: ["program": "\(name)", "count": "\(orphans)"]) }
                Self.removeUnlistedSegments(in: "\(owner.directory)/\(name)")
                update { state in
                    state.outputs = Dictionary(uniqueKeysWithValues: plan.outputs.map { ($0.id, state.outputs[$0.id] ?? .init()) })
                }
                await syncFeeds(plan, &group)
                let started = Date().timeIntervalSince1970
                let outcome = await runFFmpeg(ffmpeg, plan, controlPort: port)
                update { $0.isLive = false }
                switch outcome {
                case .replan:
                    update { $0.restarts += 1 }
                    backoff = 1
                case .stopped:
                    backoff = 1
                case .exited(let why):
                    if Date().timeIntervalSince1970 - started > 30 { backoff = 1 }
                    update { $0.error = why; $0.restarts += 1 }
                    owner.logger.warning("program renderer exited; restarting", metadata: ["program": "\(name)", "error": "\(why)", "backoff_s": "\(backoff)"])
                    try? await Task.sleep(for: .seconds(backoff))
                    backoff = min(30, backoff * 2)
                }
            }
        }

        enum Outcome { case replan, stopped, exited(String) }

        /// Runs ffmpeg with `plan` until it exits, the plan changes (beyond text) or the program stops.
        private func runFFmpeg(_ path: String, _ plan: RenderPlan, controlPort: Int) async -> Outcome {
            let stderrTail = TextTail()
            let wakes = makeWakes()
            do {
                let result = try await Subprocess.run(
                    .path(FilePath(path)), arguments: Arguments(plan.arguments), input: .none, output: .sequence, error: .sequence
                ) { execution -> Outcome in
                    await withTaskGroup(of: Outcome?.self) { group in
                        group.addTask {
                            var parser = ProgressParser()
                            do {
                                for try await line in execution.standardOutput.strings() {
                                    guard let report = parser.feed(Substring(line), now: Date().timeIntervalSince1970) else { continue }
                                    self.update { state in
                                        if !state.isLive { state.isLive = true; state.startTime = state.startTime ?? Date().timeIntervalSince1970 }
                                        state.frameCount = report.frame
                                        state.fps = report.fps
                                        state.droppedFrames = report.dropped
                                        state.speed = report.speed
                                        if let time = report.renderTime { state.averageRenderTime = time }
                                        state.error = nil
                                    }
                                }
                            } catch {}
                            return nil
                        }
                        group.addTask {
                            do {
                                for try await line in execution.standardError.strings() {
                                    // Stream keys never leave this process: not in the state, not in the logs.
                                    let (masked, output) = plan.mask(line)
                                    stderrTail.append(masked)
                                    if let output {
                                        let now = Date().timeIntervalSince1970
                                        self.update { state in
                                            state.outputs[output, default: .init()].failures += 1
                                            state.outputs[output]?.lastError = String(masked.trimmingCharacters(in: .whitespacesAndNewlines).suffix(300))
                                            state.outputs[output]?.lastErrorAt = now
                                        }
                                        self.owner.outputFailed(self.name)
                                    }
                                }
                            } catch {}
                            return nil
                        }
                        group.addTask {
                            // A change of text or controls is applied to the running ffmpeg (files rewritten,
                            // commands over its control port); any other change stops it for a new graph.
                            var applied = plan.controls
                            for await _ in wakes {
                                guard let next = self.currentPlan(controlPort: controlPort) else {
                                    try? execution.send(signal: .terminate)
                                    return .stopped
                                }
                                guard next.shape == plan.shape else {
                                    try? execution.send(signal: .terminate)
                                    return .replan
                                }
                                try? Self.write(next.textFiles)
                                self.applyTiles(next)
                                let changed = next.controls.filter { applied[$0.key] != $0.value }.sorted { $0.key < $1.key }
                                guard !changed.isEmpty else { continue }
                                do {
                                    let replies = try await ZMQControl.send(changed.map(\.value.message), port: controlPort)
                                    if let refused = replies.first(where: { !$0.hasPrefix("0 ") }) { throw ZMQControl.Failure(description: refused) }
                                    for (key, control) in changed { applied[key] = control }
                                    self.update { $0.liveChanges += 1 }
                                } catch {
                                    self.owner.logger.warning("a live change failed; restarting the renderer", metadata: ["program": "\(self.name)", "error": "\(error)"])
                                    try? execution.send(signal: .terminate)
                                    return .replan
                                }
                            }
                            // The wake-ups ended: shutting down, or ffmpeg already exited (then this is moot).
                            try? execution.send(signal: .terminate)
                            return .stopped
                        }
                        var decided: Outcome?
                        var finishedReaders = 0
                        while let outcome = await group.next() {
                            if let outcome { decided = outcome; break }
                            finishedReaders += 1
                            if finishedReaders == 2 { break }
                        }
                        group.cancelAll()
                        return decided ?? .exited("")
                    }
                }
                switch result.closureResult {
                case .replan, .stopped: return result.closureResult
                case .exited:
                    let status: String
                    switch result.terminationStatus {
                    case .exited(let code): status = "ffmpeg exited with status \(code)"
                    case .signaled(let signal): status = "ffmpeg was killed by signal \(signal)"
                    }
                    let tail = stderrTail.text.trimmingCharacters(in: .whitespacesAndNewlines)
                    return .exited(tail.isEmpty ? status : status + ": " + String(tail.suffix(300)))
                }
            } catch {
                return .exited("could not start ffmpeg: \(error)")
            }
        }

        /// Segments the playlist no longer lists (left by a crash or an earlier run; ffmpeg only deletes those
        /// it drops from its own list). Called before ffmpeg starts, so nothing is writing them.
        static func removeUnlistedSegments(in directory: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
            let playlist = (try? String(contentsOfFile: "\(directory)/live.m3u8", encoding: .utf8)) ?? ""
            let listed = Set(playlist.split(separator: "\n").map(String.init).filter { $0.hasSuffix(".ts") })
            for name in names where name.hasPrefix("seg-") && name.hasSuffix(".ts") && !listed.contains(name) {
                try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")
            }
        }

        /// Writes each text file atomically (a rename), so drawtext never reads half a file.
        static func write(_ files: [String: String]) throws {
            for (path, text) in files {
                let temporary = path + ".tmp"
                try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
                if rename(temporary, path) != 0 { throw HubError.internalError() }
            }
        }
    }
}

/// The last 2,000 characters a process wrote to standard error.
final class TextTail: Sendable {
    private let storage = Mutex("")

    func append(_ line: String) {
        storage.withLock { tail in tail = String((tail + line + "\n").suffix(2000)) }
    }

    var text: String { storage.withLock { $0 } }
}

/// A free TCP port on loopback (for ffmpeg's control socket).
enum FreePort {
    static func pick() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HubError.internalError() }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw HubError.internalError() }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Finds processes left over by an earlier StreamHub (Linux `/proc`).
enum Orphans {
    /// Sends SIGKILL to every ffmpeg whose command line names a file in `directory` (its outputs, its
    /// text files, its tile pipes) and whose parent is not this process; answers how many.
    static func kill(writingInto directory: String) -> Int {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        let me = getpid()
        var killed = 0
        for entry in entries {
            guard let pid = Int32(entry), pid != me,
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !data.isEmpty else { continue }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let program = arguments.first, program.hasSuffix("ffmpeg"), arguments.contains(where: { $0.hasPrefix(directory) }) else { continue }
            if let status = try? String(contentsOfFile: "/proc/\(entry)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }),
               Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) == me {
                continue  // one of ours
            }
            if Foundation.kill(pid, SIGKILL) == 0 { killed += 1 }
        }
        return killed
    }
}

/// What a wall shows, for a wall layer: its grid, and per cell (row by row) the HLS URL StreamHub serves for
/// it (its recording's live playlist), or `nil` for an empty or unplayable cell.
public struct WallPicture: Sendable, Equatable {
    public var columns: Int
    public var rows: Int
    public var sources: [String?]

    public init(columns: Int, rows: Int, sources: [String?]) {
        self.columns = columns
        self.rows = rows
        self.sources = sources
    }
}
