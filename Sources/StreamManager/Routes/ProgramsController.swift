import Foundation
import HubCore
import Hummingbird
import Recorder
import Registry
import NIOCore
import SQLKit
import Wall

/// `/api/v1/programs`: programs, their layers and their run state. Reading needs a signed-in viewer;
/// everything else an editor.
struct ProgramsController {
    let store: ProgramStore
    let registry: RegistryService
    let recorder: RecorderModule
    let renderers: ProgramRenderers
    /// RTMP targets pass the same guard as every URL StreamHub fetches (ffmpeg connects to them).
    let guardrail: SourceURLGuard
    let walls: WallStore
    let images: ImageStore

    static let bodyLimit = 16 * 1024

    struct NewProgramBody: Decodable {
        let name: String
        let title: String?
        let width: Int?
        let height: Int?
        let fps: Int?
        let videoBitrate: Int?
        let preset: String?
        enum CodingKeys: String, CodingKey { case name, title, width, height, fps, videoBitrate = "video_bitrate", preset }
    }

    struct SettingsBody: Decodable {
        let title: String??
        let width: Int?
        let height: Int?
        let fps: Int?
        let videoBitrate: Int?
        let preset: String?
        let audioLayerID: Int64??
        let chatChannels: [String]?
        enum CodingKeys: String, CodingKey {
            case title, width, height, fps, videoBitrate = "video_bitrate", preset, audioLayerID = "audio_layer_id", chatChannels = "chat_channels"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            title = container.contains(.title) ? .some(try container.decodeIfPresent(String.self, forKey: .title)) : .none
            width = try container.decodeIfPresent(Int.self, forKey: .width)
            height = try container.decodeIfPresent(Int.self, forKey: .height)
            fps = try container.decodeIfPresent(Int.self, forKey: .fps)
            videoBitrate = try container.decodeIfPresent(Int.self, forKey: .videoBitrate)
            preset = try container.decodeIfPresent(String.self, forKey: .preset)
            audioLayerID = container.contains(.audioLayerID) ? .some(try container.decodeIfPresent(Int64.self, forKey: .audioLayerID)) : .none
            chatChannels = try container.decodeIfPresent([String].self, forKey: .chatChannels)
        }
    }

    /// A layer as sent: every key optional (a PATCH changes what it names; `null` clears an optional field).
    struct LayerBody: Decodable {
        var kind: String?
        var visible: Bool?
        var x: Measure?
        var y: Measure?
        var width: Measure?
        var height: Measure?
        var z: Int?
        var opacity: Double?
        var text: String??
        var streamID: Int64??
        var recordingID: String??
        var url: String??
        var communityID: Int64??
        var wall: String??
        var imageID: String??
        var crop: CropBody??
        var rewindSeconds: Int??
        var style: StyleBody?

        enum CodingKeys: String, CodingKey {
            case kind, visible, x, y, width, height, z, opacity, text, streamID = "stream_id", recordingID = "recording_id", url
            case communityID = "community_id", wall, imageID = "image_id", crop, rewindSeconds = "rewind_seconds", style
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func optional<T: Decodable>(_ key: CodingKeys, _: T.Type) throws -> T?? {
                container.contains(key) ? .some(try container.decodeIfPresent(T.self, forKey: key)) : .none
            }
            kind = try container.decodeIfPresent(String.self, forKey: .kind)
            visible = try container.decodeIfPresent(Bool.self, forKey: .visible)
            x = try container.decodeIfPresent(Measure.self, forKey: .x)
            y = try container.decodeIfPresent(Measure.self, forKey: .y)
            width = try container.decodeIfPresent(Measure.self, forKey: .width)
            height = try container.decodeIfPresent(Measure.self, forKey: .height)
            z = try container.decodeIfPresent(Int.self, forKey: .z)
            opacity = try container.decodeIfPresent(Double.self, forKey: .opacity)
            text = try optional(.text, String.self)
            streamID = try optional(.streamID, Int64.self)
            recordingID = try optional(.recordingID, String.self)
            url = try optional(.url, String.self)
            communityID = try optional(.communityID, Int64.self)
            wall = try optional(.wall, String.self)
            imageID = try optional(.imageID, String.self)
            crop = try optional(.crop, CropBody.self)
            rewindSeconds = try optional(.rewindSeconds, Int.self)
            style = try container.decodeIfPresent(StyleBody.self, forKey: .style)
        }
    }

    /// A position or size: output pixels (`120`) or percent of the program's width or height (`"25%"`),
    /// turned into pixels when the request is applied.
    enum Measure: Decodable, Equatable {
        case pixels(Int)
        case percent(Double)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let pixels = try? container.decode(Int.self) {
                self = .pixels(pixels)
                return
            }
            guard let text = try? container.decode(String.self), text.hasSuffix("%"), let value = Double(text.dropLast()), value.isFinite,
                  (-400...400).contains(value) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected whole pixels (120) or a percent of the program's size (\"25%\")")
            }
            self = .percent(value)
        }

        func pixels(of total: Int) -> Int {
            switch self {
            case .pixels(let value): return value
            case .percent(let value): return Int((Double(total) * value / 100).rounded())
            }
        }
    }

    struct CropBody: Decodable {
        let left: Double?
        let top: Double?
        let right: Double?
        let bottom: Double?
    }

    struct StyleBody: Decodable {
        let color: String?
        let background: String?
        let fontSize: Int?
        let lines: Int?
        let font: String??
        let fadeSeconds: Double?
        enum CodingKeys: String, CodingKey { case color, background, fontSize = "font_size", lines, font, fadeSeconds = "fade_seconds" }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            color = try container.decodeIfPresent(String.self, forKey: .color)
            background = try container.decodeIfPresent(String.self, forKey: .background)
            fontSize = try container.decodeIfPresent(Int.self, forKey: .fontSize)
            lines = try container.decodeIfPresent(Int.self, forKey: .lines)
            font = container.contains(.font) ? .some(try container.decodeIfPresent(String.self, forKey: .font)) : .none
            fadeSeconds = try container.decodeIfPresent(Double.self, forKey: .fadeSeconds)
        }
    }

    struct OrderBody: Decodable {
        let order: [Int64]
    }

    struct OutputBody: Decodable {
        let url: String
    }

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("programs") { _, context in
            try context.require(.viewer)
            let programs = try await store.list()
            return jsonResponse("{\"programs\":[" + programs.map { $0.json(render: renderers.stateJSON($0.name)) }.joined(separator: ",") + "]}")
        }
        group.post("programs") { request, context in
            let principal = try context.require(.editor)
            let body = try await request.decodeJSON(as: NewProgramBody.self, limit: Self.bodyLimit)
            guard Program.isValidName(body.name) else {
                throw HubError.validation("name must be 1-40 lowercase letters, digits or '-' (it is the program's address: /programs/<name>/live.m3u8)")
            }
            let new = ProgramStore.NewProgram(
                name: body.name, title: try Self.title(body.title), width: try Self.width(body.width ?? 1280), height: try Self.height(body.height ?? 720),
                fps: try Self.fps(body.fps ?? 30), videoBitrate: try Self.bitrate(body.videoBitrate ?? 3000), preset: try Self.preset(body.preset ?? "veryfast"))
            let program = try await store.create(new, by: principal.actor)
            return jsonResponse(program.json(render: renderers.stateJSON(program.name)), status: .created,
                                headers: [.location: "/api/v1/programs/\(program.name)"])
        }
        group.get("programs/:name") { _, context in
            try context.require(.viewer)
            let program = try await store.get(try Self.name(context))
            return jsonResponse(program.json(render: renderers.stateJSON(program.name)))
        }
        group.patch("programs/:name") { request, context in
            let principal = try context.require(.editor)
            let name = try Self.name(context)
            let body = try await request.decodeJSON(as: SettingsBody.self, limit: Self.bodyLimit)
            let settings = ProgramStore.Settings(
                title: try body.title.map { try Self.title($0) }, width: try body.width.map(Self.width), height: try body.height.map(Self.height),
                fps: try body.fps.map(Self.fps), videoBitrate: try body.videoBitrate.map(Self.bitrate), preset: try body.preset.map(Self.preset),
                audioLayer: body.audioLayerID, chatChannels: try body.chatChannels.map(Self.chatChannels))
            let program = try await store.update(name, settings, by: principal.actor)
            return jsonResponse(program.json(render: renderers.stateJSON(program.name)))
        }
        group.delete("programs/:name") { _, context in
            let principal = try context.require(.editor)
            try await store.delete(try Self.name(context), by: principal.actor)
            return Response(status: .noContent)
        }
        for (action, state) in [("start", Program.State.running), ("stop", .stopped), ("pause", .paused), ("resume", .running)] {
            group.post("programs/:name/\(action)") { _, context in
                let principal = try context.require(.editor)
                let name = try Self.name(context)
                if action == "start" {
                    _ = try await store.get(name)  // an unknown program is 404 before ffmpeg's absence is 503
                    try await renderers.requireFFmpeg()
                }
                if action == "resume", try await store.get(name).state == .stopped {
                    throw HubError(.conflict, code: "not_running", message: "program '\(name)' is not running; start it")
                }
                let program = try await store.setState(name, state, by: principal.actor)
                return jsonResponse(program.json(render: renderers.stateJSON(program.name)))
            }
        }
        // Presence: a control page open on the program says so every 10 s and on leaving; the `chat`
        // channel shows who is there. Nothing is stored.
        group.post("programs/:name/presence") { request, context in
            let principal = try context.require(.viewer)
            let name = try Self.name(context)
            let (session, page, state) = try await request.decodeJSON(as: PresenceReport.self, limit: 1024).validated(pages: ["control"])
            _ = try await store.get(name)
            store.bus.publish(type: ProgramChannels.presenceEvent, payload: ByteBuffer(string: JSONText.object([
                ("program", .string(name)), ("session", .string(session)), ("page", .string(page)), ("state", .string(state)),
                ("name", .string(principal.name)), ("role", .string(principal.role)), ("ttl", .int(PresenceReport.ttl)),
            ])), visibility: .viewers)
            return Response(status: .accepted)
        }
        group.post("programs/:name/layers") { request, context in
            let principal = try context.require(.editor)
            let name = try Self.name(context)
            let body = try await request.decodeJSON(as: LayerBody.self, limit: Self.bodyLimit)
            let program = try await store.get(name)
            let layer = try await validate(body, onto: Self.defaultLayer, canvas: (program.width, program.height), creating: true, actor: principal.actor)
            let (updated, added) = try await store.addLayer(name, layer, by: principal.actor)
            _ = updated
            return jsonResponse(added.json, status: .created, headers: [.location: "/api/v1/programs/\(name)/layers/\(added.id)"])
        }
        group.get("programs/:name/layers") { _, context in
            try context.require(.viewer)
            let program = try await store.get(try Self.name(context))
            return jsonResponse("{\"layers\":[" + program.orderedLayers.map(\.json).joined(separator: ",") + "]}")
        }
        group.patch("programs/:name/layers/:id") { request, context in
            let principal = try context.require(.editor)
            let name = try Self.name(context)
            let id = try Self.layerID(context)
            let body = try await request.decodeJSON(as: LayerBody.self, limit: Self.bodyLimit)
            let program = try await store.get(name)
            guard let current = program.layers.first(where: { $0.id == id }) else { throw ProgramStore.layerNotFound(id, name) }
            let next = try await validate(body, onto: current, canvas: (program.width, program.height), creating: false, actor: principal.actor)
            let (_, layer) = try await store.updateLayer(name, id, by: principal.actor) { stored in
                // Another change may have landed between the read above and this transaction: apply the
                // validated fields onto the stored layer only if it is the one validated.
                guard stored == current else {
                    throw HubError(.conflict, code: "layer_changed", message: "layer \(id) changed while this request ran; send it again")
                }
                return next
            }
            return jsonResponse(layer.json)
        }
        group.delete("programs/:name/layers/:id") { _, context in
            let principal = try context.require(.editor)
            _ = try await store.deleteLayer(try Self.name(context), try Self.layerID(context), by: principal.actor)
            return Response(status: .noContent)
        }
        group.put("programs/:name/layers/order") { request, context in
            let principal = try context.require(.editor)
            let body = try await request.decodeJSON(as: OrderBody.self, limit: Self.bodyLimit)
            let program = try await store.reorder(try Self.name(context), body.order, by: principal.actor)
            return jsonResponse("{\"layers\":[" + program.orderedLayers.map(\.json).joined(separator: ",") + "]}")
        }
    }

    /// `/api/v1/programs/{name}/outputs`: RTMP push targets, shown with their keys masked.
    func addOutputRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("programs/:name/outputs") { _, context in
            try context.require(.editor)
            let program = try await store.get(try Self.name(context))
            return jsonResponse("{\"outputs\":[" + program.outputs.map(\.json).joined(separator: ",") + "]}")
        }
        group.post("programs/:name/outputs") { request, context in
            let principal = try context.require(.editor)
            let name = try Self.name(context)
            let body = try await request.decodeJSON(as: OutputBody.self, limit: Self.bodyLimit)
            let url = try await checkOutput(body.url)
            let (_, output) = try await store.addOutput(name, url: url, by: principal.actor)
            return jsonResponse(output.json, status: .created, headers: [.location: "/api/v1/programs/\(name)/outputs/\(output.id)"])
        }
        group.delete("programs/:name/outputs/:id") { _, context in
            let principal = try context.require(.editor)
            guard let id = context.parameters.get("id").flatMap(Int64.init), id > 0 else { throw HubError.notFound("no such output") }
            _ = try await store.deleteOutput(try Self.name(context), id, by: principal.actor)
            return Response(status: .noContent)
        }
    }

    /// An RTMP push target: `rtmp://` or `rtmps://`, a host the guard allows, an application and a key.
    func checkOutput(_ raw: String) async throws -> String {
        let url = raw.trimmingCharacters(in: .whitespaces)
        guard url.utf8.count <= 1024 else { throw HubError.validation("url must be at most 1024 bytes") }
        do {
            _ = try await guardrail.check(url, schemes: SourceURLGuard.rtmp)
        } catch {
            throw HubError.validation("url: \(error.description)")
        }
        guard let schemeEnd = url.range(of: "://") else { throw HubError.validation("url must be rtmp://host/app/key") }
        let path = url[schemeEnd.upperBound...].split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard path.count >= 2, path.allSatisfy({ !$0.isEmpty }), !url.contains("#") else {
            throw HubError.validation("url must name an application and a stream key: rtmp://host[:port]/app/key")
        }
        return url
    }

    static let defaultLayer = Layer(
        id: 0, kind: .text, z: Int.min, visible: true, x: 0, y: 0, width: 0, height: 0, opacity: 1, text: nil, streamID: nil, recordingID: nil,
        url: nil, communityID: nil, wall: nil, imageID: nil, crop: nil, rewindSeconds: nil, style: Layer.Style(), updatedAt: 0)

    /// Applies `body` onto `base` and checks the whole result against the canvas and its kind's rules.
    func validate(_ body: LayerBody, onto base: Layer, canvas: (width: Int, height: Int), creating: Bool, actor: String) async throws -> Layer {
        var layer = base
        if let kind = body.kind {
            guard let parsed = Layer.Kind(rawValue: kind) else {
                throw HubError.validation("kind must be one of " + Layer.Kind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            layer.kind = parsed
        } else if creating {
            throw HubError.validation("kind is required: one of " + Layer.Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if let visible = body.visible { layer.visible = visible }
        if let z = body.z {
            guard (-1000...1000).contains(z) else { throw HubError.validation("z must be from -1000 to 1000") }
            layer.z = z
        }
        layer.x = body.x?.pixels(of: canvas.width) ?? layer.x
        layer.y = body.y?.pixels(of: canvas.height) ?? layer.y
        // A new layer without a size covers the canvas, but a text or captions layer is a band as tall as
        // its lines.
        let band = layer.kind == .text || layer.kind == .captions
        let lines = layer.kind == .captions ? (body.style?.lines ?? layer.style.lines) : 1
        let fontSize = body.style?.fontSize ?? layer.style.fontSize
        // An image keeps its own size (within the canvas) unless told otherwise.
        var natural: (width: Int, height: Int)?
        if layer.kind == .image {
            let id: String? = body.imageID ?? layer.imageID
            guard let id, let image = try? await images.get(id) else {
                throw HubError.validation("an image layer needs image_id: the id of an uploaded image (POST /api/v1/images)")
            }
            let scale = min(1, Double(canvas.width) / Double(image.width), Double(canvas.height) / Double(image.height))
            natural = (max(1, Int((Double(image.width) * scale).rounded())), max(1, Int((Double(image.height) * scale).rounded())))
        }
        layer.width = body.width?.pixels(of: canvas.width)
            ?? (creating ? natural?.width ?? max(1, canvas.width - max(0, layer.x)) : layer.width)
        layer.height = body.height?.pixels(of: canvas.height)
            ?? (creating ? natural?.height ?? (band ? fontSize * lines * 5 / 4 + max(8, fontSize / 2) : canvas.height) : layer.height)
        guard (1...(canvas.width * 4)).contains(layer.width), (1...(canvas.height * 4)).contains(layer.height) else {
            throw HubError.validation("width and height must be from 1 to four times the program's size (\(canvas.width * 4)x\(canvas.height * 4))")
        }
        guard layer.x < canvas.width, layer.y < canvas.height, layer.x + layer.width > 0, layer.y + layer.height > 0 else {
            throw HubError.validation("the layer lies entirely off the \(canvas.width)x\(canvas.height) canvas")
        }
        if let opacity = body.opacity {
            guard opacity.isFinite, (0...1).contains(opacity) else { throw HubError.validation("opacity must be from 0 to 1") }
            layer.opacity = opacity
        }
        if let style = body.style {
            if let color = style.color {
                guard Layer.Style.isColour(color) else { throw HubError.validation("style.color must be #rrggbb or #rrggbbaa") }
                layer.style.color = color
            }
            if let background = style.background {
                guard Layer.Style.isColour(background) else { throw HubError.validation("style.background must be #rrggbb or #rrggbbaa") }
                layer.style.background = background
            }
            if let size = style.fontSize {
                guard (8...200).contains(size) else { throw HubError.validation("style.font_size must be from 8 to 200") }
                layer.style.fontSize = size
            }
            if let lines = style.lines {
                guard (1...5).contains(lines) else { throw HubError.validation("style.lines must be from 1 to 5") }
                layer.style.lines = lines
            }
            if let font = style.font {
                // The same rule as the overlay page's font: a family name, never a path or an option.
                if let font, !(1...60).contains(font.count) || !font.allSatisfy({ ($0.isLetter || $0.isNumber || " -_".contains($0)) && $0.isASCII }) {
                    throw HubError.validation("style.font must be a font family: 1-60 letters, digits, spaces, '-' or '_'")
                }
                layer.style.font = font
            }
            if let fade = style.fadeSeconds {
                guard fade.isFinite, (0...600).contains(fade) else { throw HubError.validation("style.fade_seconds must be from 0 to 600") }
                layer.style.fadeSeconds = fade
            }
        }
        if let text = body.text { layer.text = text }
        if let value = body.streamID { layer.streamID = value }
        if let value = body.recordingID { layer.recordingID = value }
        if let value = body.url { layer.url = value }
        if let value = body.communityID { layer.communityID = value }
        if let value = body.wall { layer.wall = value }
        if let value = body.imageID { layer.imageID = value }
        if let value = body.crop {
            if let crop = value {
                let sides = [crop.left ?? 0, crop.top ?? 0, crop.right ?? 0, crop.bottom ?? 0]
                guard sides.allSatisfy({ $0.isFinite && (0..<100).contains($0) }), sides[0] + sides[2] < 95, sides[1] + sides[3] < 95 else {
                    throw HubError.validation("crop: left, top, right and bottom are percent of the picture (0 to 100); left+right and top+bottom must stay under 95")
                }
                layer.crop = sides.allSatisfy { $0 == 0 } ? nil : Layer.Crop(left: sides[0], top: sides[1], right: sides[2], bottom: sides[3])
            } else {
                layer.crop = nil
            }
        }
        // Only the fields of the layer's kind are kept.
        let kind = layer.kind
        if kind != .text && kind != .slate { layer.text = nil }
        if let value = body.rewindSeconds {
            if let seconds = value, !(0...Program.maxRewind).contains(seconds) {
                throw HubError.validation("rewind_seconds must be from 0 to \(Program.maxRewind) (a week)")
            }
            if kind != .source, value != nil { throw HubError.validation("rewind_seconds applies to source layers") }
            layer.rewindSeconds = value == 0 ? nil : value
        }
        if kind != .source { layer.streamID = nil; layer.recordingID = nil; layer.url = nil; layer.rewindSeconds = nil }
        if kind != .captions { layer.communityID = nil }
        if kind != .wall { layer.wall = nil }
        if kind != .image { layer.imageID = nil }
        if ![.source, .wall, .image].contains(kind) {
            if case .some(.some) = body.crop { throw HubError.validation("crop applies to source, wall and image layers") }
            layer.crop = nil
        }
        switch kind {
        case .text, .slate:
            if let text = layer.text {
                guard (1...500).contains(text.count), !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) else {
                    throw HubError.validation("text must be 1 to 500 characters without control characters")
                }
            } else if kind == .text {
                throw HubError.validation("a text layer needs text")
            }
        case .source:
            // A URL is read through a recording of it (started here when none runs): the recorder's guard and
            // limits apply, and ffmpeg only ever reads from this server.
            if body.url != nil, let url = layer.url {
                guard body.recordingID == nil, body.streamID == nil else {
                    throw HubError.validation("a source layer needs exactly one of stream_id, recording_id or url")
                }
                do {
                    layer.recordingID = try await recorder.record(url: url, by: actor)
                } catch let error as HubError where error.status == .unprocessableContent || error.code == "validation_failed" {
                    throw HubError(.unprocessableContent, code: "url_refused", message: error.message)
                }
                layer.streamID = nil
            } else if body.recordingID != nil || body.streamID != nil {
                layer.url = nil
            }
            let given = [layer.streamID != nil, layer.recordingID != nil].filter { $0 }.count
            guard given == 1 else { throw HubError.validation("a source layer needs exactly one of stream_id, recording_id or url") }
            if let id = layer.streamID, (try? await registry.stream(id)) == nil { throw HubError.validation("stream_id \(id) does not exist") }
            if let id = layer.recordingID {
                guard id.utf8.count == 32, id.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }), try await recorder.recordingExists(id) else {
                    throw HubError.validation("recording_id '\(id.prefix(40))' is not a recording")
                }
            }
        case .captions:
            guard let community = layer.communityID else { throw HubError.validation("a captions layer needs community_id") }
            guard try await store.database.sql.raw("SELECT id FROM communities WHERE id = \(bind: community)").first() != nil else {
                throw HubError.validation("community_id \(community) does not exist")
            }
        case .wall:
            guard let name = layer.wall, Wall.isValidName(name), let wall = try? await walls.get(name) else {
                throw HubError.validation("a wall layer needs wall: the name of an existing wall")
            }
            guard wall.cellCount <= Program.maxWallTiles else {
                throw HubError.validation("a wall layer shows walls of at most \(Program.maxWallTiles) cells ('\(name)' has \(wall.cellCount)); each tile is one live decode")
            }
        case .image:
            // Checked above, where its size was worked out.
            guard layer.imageID != nil else {
                throw HubError.validation("an image layer needs image_id: the id of an uploaded image (POST /api/v1/images)")
            }
        }
        return layer
    }

    static func name(_ context: HubRequestContext) throws -> String {
        guard let name = context.parameters.get("name"), Program.isValidName(name) else { throw HubError.notFound("no such program") }
        return name
    }

    static func layerID(_ context: HubRequestContext) throws -> Int64 {
        guard let id = context.parameters.get("id").flatMap(Int64.init), id > 0 else { throw HubError.notFound("no such layer") }
        return id
    }

    static func title(_ title: String?) throws -> String? {
        guard let title = title?.trimmingCharacters(in: .whitespaces), !title.isEmpty else { return nil }
        guard title.count <= 100, !title.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw HubError.validation("title must be at most 100 characters without control characters")
        }
        return title
    }

    static func width(_ value: Int) throws -> Int {
        guard Program.widths.contains(value), value % 2 == 0 else { throw HubError.validation("width must be an even number from 160 to 3840") }
        return value
    }

    static func height(_ value: Int) throws -> Int {
        guard Program.heights.contains(value), value % 2 == 0 else { throw HubError.validation("height must be an even number from 90 to 2160") }
        return value
    }

    static func fps(_ value: Int) throws -> Int {
        guard Program.frameRates.contains(value) else { throw HubError.validation("fps must be from 1 to 60") }
        return value
    }

    static func bitrate(_ value: Int) throws -> Int {
        guard Program.bitrates.contains(value) else { throw HubError.validation("video_bitrate must be from 100 to 50000 (kbit/s)") }
        return value
    }

    /// `source:channel` entries (`twitch:somechannel`, `discord:123456789`), at most 20, normalised as the
    /// chat channel compares them.
    static func chatChannels(_ values: [String]) throws -> [String] {
        guard values.count <= Program.maxChatChannels else { throw HubError.validation("chat_channels holds at most \(Program.maxChatChannels) channels") }
        var seen: [String] = []
        for value in values {
            let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, (1...32).contains(parts[0].count),
                  parts[0].allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }),
                  (1...200).contains(parts[1].count), !parts[1].unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f }) else {
                throw HubError.validation("each of chat_channels is source:channel, like twitch:somechannel or discord:123456789")
            }
            let key = Program.chatKey(source: parts[0], channel: parts[1])
            if !seen.contains(key) { seen.append(key) }
        }
        return seen
    }

    static func preset(_ value: String) throws -> String {
        guard Program.presets.contains(value) else { throw HubError.validation("preset must be one of " + Program.presets.joined(separator: ", ")) }
        return value
    }
}
