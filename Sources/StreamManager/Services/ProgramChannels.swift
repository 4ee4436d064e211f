import Foundation
import HubCore
import Hummingbird
import HummingbirdCore
import NIOCore
import Realtime
import Recorder
import ServiceLifecycle
import Synchronization

/// The programs' side of `WS /api/stream/ws` (the seed's channels), for the same callers as reading a
/// program (a signed-in viewer or better; the recorder's channel checks that first):
/// - `target=state&program=NAME`: the welcome, that program's current state, then its `stateUpdate`s
///   (without `program`, the channel carries every program and recording, as before);
/// - `target=preview&program=NAME[&fps=1-5][&width=320|640]`: JPEG frames of the output (binary frames: a
///   4-byte big-endian header length, a JSON header, the JPEG);
/// - `target=layers[&program=NAME]`: the layers as they are (`layers` messages), then every change as it is
///   applied (`layerUpdate`: the layer as the API shows it, and the order).
struct ProgramChannels {
    let store: ProgramStore
    let renderers: ProgramRenderers

    static func stateTopic(_ name: String) -> String { "program.state.\(name)" }
    static func chatTopic(_ name: String) -> String { "program.chat.\(name)" }
    /// Who has a program's control page open: `{program, session, page, state, name, role, ttl}`.
    static let presenceEvent = "program_presence"
    static func layersTopic(_ name: String?) -> String { name.map { "program.layers.\($0)" } ?? "program.layers" }
    static func previewTopic(_ name: String, width: Int, fps: Int) -> String { "program.preview.\(name).\(width).\(fps)" }
    static let previewRates = 1...RenderPlan.previewRate

    /// A string at `path` in a JSON payload (`["program"]`, `["program", "name"]`).
    static func programName(in payload: ByteBuffer, path: [String]) -> String? {
        guard var value = try? JSONSerialization.jsonObject(with: Data(payload.readableBytesView)) else { return nil }
        for key in path {
            guard let object = value as? [String: Any], let next = object[key] else { return nil }
            value = next
        }
        return (value as? String).flatMap { Program.isValidName($0) ? $0 : nil }
    }

    func register(on recorder: RecorderModule) {
        let store = store
        let renderers = renderers
        recorder.addStreamChannel(targets: ["layers", "chat"]) { target, uri, identity in
            let name = uri.queryParameters["program"].map(String.init)
            guard target == "layers" || target == "chat" || name != nil else { return nil }
            var program: Program?
            if let name {
                do {
                    guard Program.isValidName(name) else { throw ProgramStore.notFound(name) }
                    program = try await store.get(name)
                } catch let error as HubError where error.status == .notFound {
                    return HubWebSocketRoutes.refused(code: ChannelCloseCode.notFound, reason: "no program named '\(name.prefix(40))'")
                }
            }
            let messages = ChannelMessages()
            let onText: @Sendable (String, HubConnection) -> Void = { text, connection in messages.handle(text, on: connection) }
            switch target {
            case "chat":
                guard let program else {
                    return HubWebSocketRoutes.refused(code: ChannelCloseCode.notFound, reason: "target=chat needs ?program=NAME")
                }
                let welcome = WebSocketWire.textFrame(ByteBuffer(string: "{\"type\":\"welcome\",\"message\":\"Connected to the StreamHub chat channel\","
                    + "\"program\":\(JSONText.render(.string(program.name))),\"channels\":["
                    + program.chatChannels.map { JSONText.render(.string($0)) }.joined(separator: ",") + "],\"timestamp\":\(Int(Timestamp.now() * 1000))}"))
                return HubWebSocketRoutes.Accepted(topic: Self.chatTopic(program.name), identity: identity, initialFrames: [welcome],
                                                   replayHistory: false, onText: onText)
            case "state":
                guard let program else { return nil }
                let payload = ByteBuffer(string: renderers.statePayload(program.name, targetFPS: program.fps))
                return HubWebSocketRoutes.Accepted(
                    topic: Self.stateTopic(program.name), identity: identity,
                    initialFrames: [RecorderModule.welcome("state"), WebSocketWire.textFrame(RecorderModule.stateUpdate(payload))],
                    replayHistory: false, onText: onText)
            case "preview":
                guard let program else { return nil }
                let fps = min(Self.previewRates.upperBound, max(Self.previewRates.lowerBound, uri.queryParameters["fps"].flatMap { Int($0) } ?? 2))
                let asked = uri.queryParameters["width"].flatMap { Int($0) } ?? RenderPlan.previewWidths[0]
                let sizes = RenderPlan.previewSizes(program)
                let size = sizes.last { $0.width <= max(asked, sizes[0].width) } ?? sizes[0]
                var frames = [RecorderModule.welcome("preview")]
                if let frame = ProgramPreviewPump.frame(program: program.name, path: RenderPlan.previewFile(in: "\(renderers.directory)/\(program.name)", width: size.width),
                                                        width: size.width, height: size.height) {
                    frames.append(frame)
                }
                return HubWebSocketRoutes.Accepted(topic: Self.previewTopic(program.name, width: size.width, fps: fps), identity: identity,
                                                   initialFrames: frames, replayHistory: false, onText: onText)
            case "layers":
                let programs: [Program]
                if let program { programs = [program] } else { programs = try await store.list() }
                let frames = [RecorderModule.welcome("layers")] + programs.map { program in
                    WebSocketWire.textFrame(ByteBuffer(string: "{\"type\":\"layers\",\"payload\":" + JSONText.object([
                        ("program", .string(program.name)), ("version", .int(Int(program.version))), ("state", .string(program.state.rawValue)),
                        ("layers", .raw("[" + program.orderedLayers.map(\.json).joined(separator: ",") + "]")),
                    ]) + "}"))
                }
                return HubWebSocketRoutes.Accepted(topic: Self.layersTopic(program?.name), identity: identity, initialFrames: frames,
                                                   replayHistory: false, onText: onText)
            default:
                return nil
            }
        }
    }
}

/// What a client may send on the programs' channels: `{"type":"ping"}` (answered `{"type":"pong"}`). Anything
/// else gets an error frame; more than 20 messages in a second are answered `rate_limited` and dropped, and a
/// client that keeps it up for 10 s is closed (1008).
final class ChannelMessages: Sendable {
    private let window = Mutex<(start: Double, count: Int, limitedSince: Double?)>((0, 0, nil))
    static let perSecond = 20

    func handle(_ text: String, on connection: HubConnection) {
        let now = Date().timeIntervalSince1970
        let verdict = window.withLock { window -> (limited: Bool, close: Bool) in
            if now - window.start >= 1 {
                if window.count <= Self.perSecond { window.limitedSince = nil }
                window = (now, 0, window.limitedSince)
            }
            window.count += 1
            guard window.count > Self.perSecond else { return (false, false) }
            let since = window.limitedSince ?? now
            window.limitedSince = since
            return (true, now - since >= 10)
        }
        if verdict.close { connection.close(code: 1008, reason: "too many messages"); return }
        if verdict.limited {
            connection.send(ClientErrorFrame.make(code: "rate_limited", message: "at most \(Self.perSecond) messages a second"))
            return
        }
        guard text.utf8.count <= 4096, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            connection.send(ClientErrorFrame.make(code: "invalid_message", message: "send a JSON object of at most 4096 bytes, like {\"type\":\"ping\"}"))
            return
        }
        guard object["type"] as? String == "ping" else {
            connection.send(ClientErrorFrame.make(code: "unsupported_message", message: "this channel only sends; the one message it takes is {\"type\":\"ping\"}"))
            return
        }
        connection.send(WebSocketWire.textFrame(ByteBuffer(string: "{\"type\":\"pong\",\"timestamp\":\(Int(now * 1000))}")))
    }
}

/// Sends every program change (from any instance) to `target=layers` clients as a `layerUpdate`: the
/// `program_changed` payload (op, layer, order, version, state).
struct ProgramLayersForwarder: Service {
    let bus: EventBus
    let hub: WebSocketHub

    func run() async throws {
        for await envelope in bus.subscribe(types: [ProgramStore.changedEvent]).cancelOnGracefulShutdown() {
            var frame = ByteBuffer(string: "{\"type\":\"layerUpdate\",\"payload\":")
            var payload = envelope.payload
            frame.writeBuffer(&payload)
            frame.writeString("}")
            hub.broadcast(text: frame, to: ProgramChannels.layersTopic(nil), visibility: envelope.visibility)
            if let name = ProgramChannels.programName(in: envelope.payload, path: ["program"]) {
                hub.broadcast(text: frame, to: ProgramChannels.layersTopic(name), visibility: envelope.visibility)
            }
        }
    }
}

/// Sends the programs' preview JPEGs (ffmpeg rewrites them 5 times a second) to `target=preview` clients
/// at the rate and width each asked for, reading a file only when someone watches it; clients of the
/// plain `target=preview` (recordings) get each program once a second at the narrowest width.
struct ProgramPreviewPump: Service {
    let renderers: ProgramRenderers
    let hub: WebSocketHub

    func run() async throws {
        var sent: [String: Double] = [:]  // "name/fps" → when
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: .milliseconds(100)) })) != nil {
            let now = Date().timeIntervalSince1970
            var frames: [String: ByteBuffer?] = [:]  // by path, read at most once a round
            for (name, files) in renderers.livePreviews() {
                for fps in ProgramChannels.previewRates {
                    let key = "\(name)/\(fps)"
                    guard now - (sent[key] ?? 0) >= 1 / Double(fps) - 0.05 else { continue }
                    sent[key] = now
                    for file in files {
                        let topic = ProgramChannels.previewTopic(name, width: file.width, fps: fps)
                        guard hub.connectionCount(topic: topic) > 0 else { continue }
                        if frames[file.path] == nil { frames[file.path] = Self.frame(program: name, path: file.path, width: file.width, height: file.height) }
                        if let frame = frames[file.path] ?? nil { hub.broadcast(frame: frame, to: topic, visibility: .viewers) }
                    }
                    if fps == 1, let file = files.first, hub.connectionCount(topic: RecorderModule.previewTopic) > 0 {
                        if frames[file.path] == nil { frames[file.path] = Self.frame(program: name, path: file.path, width: file.width, height: file.height) }
                        if let frame = frames[file.path] ?? nil { hub.broadcast(frame: frame, to: RecorderModule.previewTopic, visibility: .viewers) }
                    }
                }
            }
        }
    }

    /// A preview frame: 4-byte big-endian header length, the JSON header
    /// (`{"type":"preview","program","timestamp","width","height","format":"jpeg","size"}`), the JPEG.
    static func frame(program: String, path: String, width: Int, height: Int) -> ByteBuffer? {
        guard let jpeg = FileManager.default.contents(atPath: path), jpeg.count > 2, jpeg.count < 4 << 20 else { return nil }
        let header = JSONText.object([
            ("type", .string("preview")), ("program", .string(program)), ("timestamp", .int(Int(Timestamp.now() * 1000))),
            ("width", .int(width)), ("height", .int(height)), ("format", .string("jpeg")), ("size", .int(jpeg.count)),
        ])
        var frame = ByteBuffer()
        frame.writeInteger(UInt32(header.utf8.count), endianness: .big)
        frame.writeString(header)
        frame.writeBytes(jpeg)
        return WebSocketWire.binaryFrame(frame)
    }
}

/// The `chat` channel's feed: chat messages and moderation from the discovery connectors in the channels a
/// program links (`chat_channels`), and who has the program's control page open — each as
/// `{"type":"chat"|"moderation"|"presence","payload":{"program",…the event…}}`, from any instance.
struct ProgramChatForwarder: Service {
    let store: ProgramStore
    let bus: EventBus
    let hub: WebSocketHub
    static let chatEvent = "chat_message"
    static let moderationEvent = "chat_moderation"

    func run() async throws {
        let events = bus.subscribe(types: [Self.chatEvent, Self.moderationEvent, ProgramChannels.presenceEvent, ProgramStore.changedEvent])
        var following: [String: Set<String>] = [:]  // chat key → programs
        // Only names and chat links: a layer dragged on a control page must not cost a read of every program.
        func reload() async {
            guard let rows = try? await store.database.sql.raw("SELECT name, chat_channels FROM programs WHERE chat_channels IS NOT NULL").all() else { return }
            following = [:]
            for row in rows {
                guard let name = try? row.decode(column: "name", as: String.self),
                      let text = try? row.decode(column: "chat_channels", as: String.self),
                      let keys = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String] else { continue }
                for key in keys { following[key, default: []].insert(name) }
            }
        }
        await reload()
        for await envelope in events.cancelOnGracefulShutdown() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(envelope.payload.readableBytesView)) as? [String: Any] else { continue }
            switch envelope.type {
            case ProgramStore.changedEvent:
                await reload()
            case ProgramChannels.presenceEvent:
                guard let name = object["program"] as? String, Program.isValidName(name) else { continue }
                send("presence", envelope.payload, to: [name], visibility: envelope.visibility)
            default:
                guard let source = object["source"] as? String, let channel = object["channel"] as? String,
                      let programs = following[Program.chatKey(source: source, channel: channel)], !programs.isEmpty else { continue }
                send(envelope.type == Self.chatEvent ? "chat" : "moderation", envelope.payload, to: programs, visibility: envelope.visibility)
            }
        }
    }

    /// One frame per program (its name goes into the payload), encoded once per program.
    func send(_ type: String, _ payload: ByteBuffer, to programs: Set<String>, visibility: EventVisibility) {
        let body = String(buffer: payload)
        for name in programs {
            // `{"program":"name",` followed by the event's own fields.
            let inner = body.hasPrefix("{\"program\"") ? body : "{\"program\":" + JSONText.render(.string(name)) + (body == "{}" ? "}" : "," + body.dropFirst())
            hub.broadcast(text: ByteBuffer(string: "{\"type\":\"\(type)\",\"payload\":" + inner + "}"), to: ProgramChannels.chatTopic(name), visibility: visibility)
        }
    }
}
