import Foundation

/// A caption line a captions layer may show: its text, when it came, and whether it is an interim hypothesis
/// (replaced by the next caption).
struct CaptionLine: Sendable, Equatable {
    var text: String
    var at: Double
    var interim = false
}

/// The ffmpeg command for one program: inputs, the filter graph built from its layers (bottom to top) and
/// the outputs. Pure: it reads the program and where things are, and writes nothing.
///
/// What can change while ffmpeg runs is kept out of the graph's shape:
/// - text (a text layer's words, a slate's message, captions) is drawn by `drawtext` from files
///   (`reload=1`): the renderer rewrites the file;
/// - a layer's visibility, its position, and pause/resume are **controls**: every layer is in the graph
///   (hidden ones disabled), each filter is named (`drawbox@l3b`, `overlay@l5`), and a change is a command
///   sent to ffmpeg's `zmq` filter (`drawbox@l3b enable 0`, `overlay@l5 x 120`).
/// Two plans with the same ``shape`` differ only in files and controls, so the renderer applies the
/// difference without a restart; anything else (a layer added or removed, resized, another source, another
/// style, new output settings) is a new ffmpeg.
struct RenderPlan: Equatable {
    /// ffmpeg's arguments (without the program path).
    var arguments: [String]
    /// The arguments with every control's value left out: equal shapes can be switched between live.
    var shape: [String]
    /// The text each drawtext file must hold, by file path (written before ffmpeg starts and on changes).
    var textFiles: [String: String]
    /// Live controls by key (`target/what`): the value in force and the zmq message that sets it.
    var controls: [String: Control]
    /// The RTMP outputs pushed to (their URLs hold keys: ffmpeg's messages are masked with these).
    var outputs: [Output] = []
    /// The wall layers' tiles: each a named pipe the program reads raw video from (see ``TileFeed``).
    var tiles: [Tile] = []

    /// A raw stream StreamHub feeds the program through a named pipe (see ``TileFeed``): a wall tile, a source
    /// layer's picture, or the program's audio.
    struct Tile: Equatable {
        var layer: Int64
        /// The wall cell (1-based) the tile shows; 0 for a source layer's picture or audio.
        var cell: Int
        var fifo: String
        var width: Int
        var height: Int
        var audio = false
        /// The feed's decoder cuts this from the picture before scaling it (a source layer's crop).
        var crop: String? = nil
    }

    struct Control: Equatable {
        var value: String
        /// The zmq command: `TARGET COMMAND ARG`.
        var message: String
    }

    /// Where inputs and outputs are.
    struct Environment {
        /// The directory of the program's HLS output (and its text files).
        var directory: String
        /// The base URL StreamHub itself answers on, for recordings (`http://127.0.0.1:8027`).
        var selfURL: String
        /// A TrueType font, or `nil` for fontconfig's "Sans".
        var fontFile: String?
        /// The recording each source layer plays (its own, or its stream's running recording); absent → slate.
        var recordingForLayer: [Int64: String]
        /// The last caption lines of each community shown by a captions layer.
        var captions: [Int64: [CaptionLine]]
        /// The grid of each wall layer's wall (columns, rows); absent → a dark box.
        var wallGrids: [Int64: (columns: Int, rows: Int)] = [:]
        /// The file of each image layer's image; absent → the layer is left out.
        var imageFiles: [Int64: String] = [:]
        /// The loopback port ffmpeg's zmq filter listens on for controls.
        var controlPort: Int
        /// Seconds per HLS segment.
        var segmentSeconds = 1
    }

    /// Preview frames a second (the most a preview client can ask for).
    static let previewRate = 5
    /// Preview widths clients choose from (capped by the program's own width).
    static let previewWidths = [320, 640]

    /// The preview sizes of a program: each width up to the program's, with the height kept in proportion (even).
    static func previewSizes(_ program: Program) -> [(width: Int, height: Int)] {
        var widths = previewWidths.filter { $0 < program.width }
        if widths.count < previewWidths.count { widths.append(program.width) }
        return widths.map { width in (width, max(2, (program.height * width / program.width) / 2 * 2)) }
    }

    static func previewFile(in directory: String, width: Int) -> String {
        "\(directory)/preview-\(width).jpg"
    }

    static func textFile(for layer: Layer, in directory: String) -> String {
        "\(directory)/layer-\(layer.id).txt"
    }

    /// What a captions layer shows: its community's last `lines` lines, without those older than its fade.
    static func captionText(_ lines: [CaptionLine], style: Layer.Style, now: Double) -> String {
        let shown = style.fadeSeconds > 0 ? lines.filter { now - $0.at < style.fadeSeconds } : lines
        return shown.suffix(style.lines).map(\.text).joined(separator: "\n")
    }

    /// Builds the filter graph, marking control values so the shape can be told apart from them.
    private struct Builder {
        var filters: [String] = []
        var current = "base0"
        var step = 0
        var controls: [String: Control] = [:]

        /// A control value inside a filter's options: `\u{1}key\u{1}` until the arguments are rendered.
        mutating func control(_ target: String, _ what: String, _ value: String, message: String) -> String {
            let key = "\(target)/\(what)"
            controls[key] = Control(value: value, message: message)
            return "\u{1}\(key)\u{1}"
        }

        mutating func chain(_ filter: String, extraInput: String? = nil) {
            step += 1
            let label = "base\(step)"
            filters.append("[\(current)]" + (extraInput.map { "[\($0)]" } ?? "") + filter + "[\(label)]")
            current = label
        }

        /// `enable` of a named filter as a control (`1` shown, `0` hidden).
        mutating func enable(_ target: String, _ on: Bool) -> String {
            "enable=" + control(target, "enable", on ? "1" : "0", message: "\(target) enable \(on ? "1" : "0")")
        }
    }

    static func make(_ program: Program, paused: Bool, environment env: Environment) -> RenderPlan {
        var arguments = ["-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-nostdin", "-y"]
        var textFiles: [String: String] = [:]
        var tiles: [Tile] = []
        let size = "\(program.width)x\(program.height)"
        // Input 0: the canvas, paced in real time (it sets the output's clock); input 1: silence.
        arguments += ["-re", "-f", "lavfi", "-i", "color=c=0x101010:s=\(size):r=\(program.fps)"]
        arguments += ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"]
        var graph = Builder()
        // The control point comes first, so commands reach every filter after it from the next frame on.
        graph.filters.append("[0:v]setpts=PTS-STARTPTS,zmq=bind_address=" + escape("tcp://127.0.0.1:\(env.controlPort)") + "[base0]")
        var nextInput = 2
        var audioInput: Int?
        let layers = program.orderedLayers
        // Live: every visible layer but slates. Paused: the visible slates, or "Paused" when there is none.
        func shows(_ layer: Layer) -> Bool {
            layer.visible && (paused ? layer.kind == .slate : layer.kind != .slate)
        }
        for layer in layers {
            let on = shows(layer)
            switch layer.kind {
            case .source:
                // The picture comes from a feed (paced raw video that StreamHub decodes from the layer's
                // recording): another recording is a switch of the feed, not a new graph, and a source that
                // fails or stalls shows "No signal" in its place while the program goes on.
                let width = max(2, layer.width / 2 * 2), height = max(2, layer.height / 2 * 2)
                let fifo = "\(env.directory)/source-\(layer.id).fifo"
                tiles.append(Tile(layer: layer.id, cell: 0, fifo: fifo, width: width, height: height, crop: layer.crop?.filter))
                arguments += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", "\(width)x\(height)", "-framerate", "\(program.fps)",
                              "-thread_queue_size", "64", "-probesize", "32", "-analyzeduration", "0", "-i", fifo]
                let input = nextInput
                nextInput += 1
                if program.audioLayer == layer.id {
                    let audioFifo = "\(env.directory)/audio-\(layer.id).fifo"
                    tiles.append(Tile(layer: layer.id, cell: 0, fifo: audioFifo, width: 0, height: 0, audio: true))
                    arguments += ["-f", "s16le", "-ar", "48000", "-ac", "2", "-thread_queue_size", "256", "-probesize", "32", "-analyzeduration", "0",
                                  "-i", audioFifo]
                    audioInput = nextInput
                    nextInput += 1
                }
                let source = "src\(layer.id)"
                graph.filters.append("[\(input):v]setpts=PTS-STARTPTS,scale=\(layer.width):\(layer.height),format=yuva420p"
                                     + (layer.opacity < 1 ? ",colorchannelmixer=aa=\(fmt(layer.opacity))" : "") + "[\(source)]")
                let target = "overlay@l\(layer.id)"
                graph.chain("\(target)=" + position(&graph, target, layer) + ":eof_action=pass:repeatlast=1:" + graph.enable(target, on),
                            extraInput: source)
            case .text, .slate, .captions:
                // Drawn on a transparent canvas of the layer's size (its background colour, then its text a
                // little in) and laid over the picture at the layer's position: overlay moves on command,
                // where drawtext cannot (its `reinit` refuses a text file).
                var canvas = "color=c=0x000000@0:s=\(layer.width)x\(layer.height):r=\(program.fps),format=yuva420p"
                if layer.style.background.count == 7 || !layer.style.background.hasSuffix("00") {
                    canvas += ",drawbox=x=0:y=0:w=\(layer.width):h=\(layer.height):color=\(ffColor(layer.style.background, opacity: layer.opacity)):t=fill:replace=1"
                }
                let text: String?
                if layer.kind == .captions {
                    text = captionText(layer.communityID.flatMap { env.captions[$0] } ?? [], style: layer.style, now: Date().timeIntervalSince1970)
                } else {
                    text = layer.text
                }
                if let text {
                    let file = textFile(for: layer, in: env.directory)
                    textFiles[file] = text
                    let pad = max(4, layer.style.fontSize / 4)
                    canvas += ",drawtext=" + drawText(file: file, size: layer.style.fontSize, color: layer.style.color, opacity: layer.opacity,
                                                  font: layer.style.font == nil ? env.fontFile : nil, family: layer.style.font)
                        + ":x=\(pad):y=\(pad)"
                }
                let drawn = "txt\(layer.id)"
                graph.filters.append(canvas + "[\(drawn)]")
                let target = "overlay@l\(layer.id)"
                graph.chain("\(target)=" + position(&graph, target, layer) + ":repeatlast=1:" + graph.enable(target, on), extraInput: drawn)
            case .wall:
                guard let grid = env.wallGrids[layer.id], grid.columns * grid.rows >= 1 else {
                    let target = "drawbox@l\(layer.id)"
                    graph.chain("drawbox@l\(layer.id)=" + position(&graph, target, layer)
                                + ":w=\(layer.width):h=\(layer.height):color=0x202020@\(fmt(layer.opacity)):t=fill:" + graph.enable(target, on))
                    continue
                }
                // One raw input per tile, fed in real time by StreamHub (a tile swap changes the feed, not the graph).
                let tileWidth = max(2, layer.width / grid.columns / 2 * 2), tileHeight = max(2, layer.height / grid.rows / 2 * 2)
                var labels: [String] = []
                var layout: [String] = []
                for cell in 1...(grid.columns * grid.rows) {
                    let fifo = "\(env.directory)/tile-\(layer.id)-\(cell).fifo"
                    tiles.append(Tile(layer: layer.id, cell: cell, fifo: fifo, width: tileWidth, height: tileHeight))
                    arguments += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", "\(tileWidth)x\(tileHeight)", "-framerate", "\(program.fps)",
                                  "-thread_queue_size", "64", "-probesize", "32", "-analyzeduration", "0", "-i", fifo]
                    let label = "tile\(layer.id)x\(cell)"
                    graph.filters.append("[\(nextInput):v]setpts=PTS-STARTPTS[\(label)]")
                    nextInput += 1
                    labels.append("[\(label)]")
                    layout.append("\((cell - 1) % grid.columns * tileWidth)_\((cell - 1) / grid.columns * tileHeight)")
                }
                let mosaic = "wall\(layer.id)"
                let stack = labels.count == 1 ? labels[0] + "null" : labels.joined() + "xstack=inputs=\(labels.count):layout=" + layout.joined(separator: "|")
                let cut = layer.crop.map { ",\($0.filter),scale=\(layer.width):\(layer.height)" } ?? ""
                graph.filters.append(stack + cut + ",format=yuva420p" + (layer.opacity < 1 ? ",colorchannelmixer=aa=\(fmt(layer.opacity))" : "") + "[\(mosaic)]")
                let target = "overlay@l\(layer.id)"
                graph.chain("\(target)=" + position(&graph, target, layer) + ":repeatlast=1:" + graph.enable(target, on), extraInput: mosaic)
            case .image:
                // One decoded frame, held by the overlay for as long as the program runs (eof_action=repeat).
                guard let file = env.imageFiles[layer.id] else { continue }
                arguments += ["-f", "image2", "-pattern_type", "none", "-i", file]
                let input = nextInput
                nextInput += 1
                let picture = "img\(layer.id)"
                graph.filters.append("[\(input):v]" + (layer.crop.map { $0.filter + "," } ?? "") + "scale=\(layer.width):\(layer.height),format=yuva420p"
                                     + (layer.opacity < 1 ? ",colorchannelmixer=aa=\(fmt(layer.opacity))" : "") + "[\(picture)]")
                let target = "overlay@l\(layer.id)"
                graph.chain("\(target)=" + position(&graph, target, layer) + ":eof_action=repeat:repeatlast=1:" + graph.enable(target, on),
                            extraInput: picture)
            }
        }
        // "Paused" over everything when the program is paused and shows no slate of its own.
        let pausedFile = "\(env.directory)/paused.txt"
        textFiles[pausedFile] = "Paused"
        let showPaused = paused && !layers.contains { $0.kind == .slate && $0.visible }
        graph.chain("drawtext@paused=" + drawText(file: pausedFile, size: max(24, program.height / 12), color: "#ffffff", opacity: 1, font: env.fontFile)
                    + ":x=(w-text_w)/2:y=(h-text_h)/2:" + graph.enable("drawtext@paused", showPaused))
        // The output, and its preview: JPEGs at `previewRate` frames a second in two widths, rewritten in place
        // (atomically) for the preview channel and the control page.
        let previews = previewSizes(program)
        graph.filters.append("[\(graph.current)]format=yuv420p,split=2[vout][pv]")
        graph.filters.append("[pv]fps=\(previewRate),split=\(previews.count)" + previews.indices.map { "[pv\($0)]" }.joined())
        for (index, size) in previews.enumerated() {
            graph.filters.append("[pv\(index)]scale=\(size.width):\(size.height)[preview\(index)]")
        }
        let filterGraph = graph.filters.joined(separator: ";")
        arguments += ["-filter_complex", filterGraph]
        arguments += ["-map", "[vout]", "-map", audioInput.map { "\($0):a" } ?? "1:a"]
        let gop = program.fps * env.segmentSeconds
        arguments += ["-c:v", "libx264", "-preset", program.preset, "-tune", "zerolatency", "-b:v", "\(program.videoBitrate)k",
                      "-maxrate", "\(program.videoBitrate)k", "-bufsize", "\(program.videoBitrate * 2)k", "-g", "\(gop)", "-keyint_min", "\(gop)",
                      "-sc_threshold", "0", "-r", "\(program.fps)", "-c:a", "aac", "-b:a", "128k", "-ar", "48000"]
        let hlsFlags = "delete_segments+append_list+discont_start+independent_segments+omit_endlist+program_date_time"
        let playlist = "\(env.directory)/live.m3u8"
        if program.outputs.isEmpty {
            arguments += ["-f", "hls", "-hls_time", "\(env.segmentSeconds)", "-hls_list_size", "6", "-hls_flags", hlsFlags,
                          "-hls_segment_filename", "\(env.directory)/seg-%d.ts", playlist]
        } else {
            // One encode, several muxers: the HLS output and each RTMP target through its own fifo, which
            // reconnects a dropped target (every second, forever) without disturbing the others or HLS.
            // FLV wants the codec headers out of band; the HLS muxer puts them back before each keyframe.
            arguments += ["-flags:v", "+global_header", "-f", "tee"]
            var slaves = ["[f=hls:hls_time=\(env.segmentSeconds):hls_list_size=6:hls_flags=\(hlsFlags):hls_segment_filename="
                          + teeOption("\(env.directory)/seg-%d.ts") + "]" + teeEscape(playlist)]
            for output in program.outputs {
                let fifo = ["attempt_recovery=1", "recover_any_error=1", "recovery_wait_time=1", "max_recovery_attempts=0",
                            "drop_pkts_on_overflow=1", "queue_size=120"].joined(separator: ":")
                slaves.append("[f=flv:onfail=ignore:use_fifo=1:fifo_options=" + teeOption(fifo) + "]" + teeEscape(output.url))
            }
            arguments.append(slaves.joined(separator: "|"))
        }
        for (index, size) in previews.enumerated() {
            arguments += ["-map", "[preview\(index)]", "-an", "-c:v", "mjpeg", "-q:v", "6", "-f", "image2", "-update", "1", "-atomic_writing", "1",
                          previewFile(in: env.directory, width: size.width)]
        }
        let controls = graph.controls
        let rendered = arguments.map { argument in fill(argument) { key in controls[key]?.value ?? "" } }
        // The shape leaves out control values and the control port (a new ffmpeg gets a new one).
        let shape = arguments.map { argument in fill(argument) { _ in "" } }
            .map { $0.replacingOccurrences(of: "\\\\:\(env.controlPort)", with: "") }
        return RenderPlan(arguments: rendered, shape: shape, textFiles: textFiles, controls: controls, outputs: program.outputs, tiles: tiles)
    }

    /// A line ffmpeg wrote with every output URL and stream key masked, and the output it named, if any.
    func mask(_ line: String) -> (line: String, output: Int64?) {
        var masked = line
        var named: Int64?
        for output in outputs {
            if masked.contains(output.url) {
                masked = masked.replacingOccurrences(of: output.url, with: output.masked)
                named = output.id
            }
            if let key = output.url.split(separator: "/", omittingEmptySubsequences: false).last, key.count >= 4, masked.contains(key) {
                masked = masked.replacingOccurrences(of: String(key), with: "…")
                named = named ?? output.id
            }
        }
        return (masked, named)
    }

    /// `x=…:y=…` of a layer as controls (overlay and drawbox take new coordinates as commands).
    private static func position(_ graph: inout Builder, _ target: String, _ layer: Layer) -> String {
        "x=" + graph.control(target, "x", "\(layer.x)", message: "\(target) x \(layer.x)")
            + ":y=" + graph.control(target, "y", "\(layer.y)", message: "\(target) y \(layer.y)")
    }

    /// Replaces each `\u{1}key\u{1}` in `text` with `value(key)`.
    private static func fill(_ text: String, _ value: (String) -> String) -> String {
        guard text.contains("\u{1}") else { return text }
        var out = ""
        var parts = text.split(separator: "\u{1}", omittingEmptySubsequences: false).makeIterator()
        var inside = false
        while let part = parts.next() {
            out += inside ? value(String(part)) : String(part)
            inside.toggle()
        }
        return out
    }

    /// drawtext options reading `file` (re-read every frame, so the text changes live; never expanded).
    static func drawText(file: String, size: Int, color: String, opacity: Double, font: String?, family: String? = nil) -> String {
        [
            font.map { "fontfile=\(escape($0))" } ?? "font=\(escape(family ?? "Sans"))",
            "textfile=\(escape(file))", "reload=1", "expansion=none", "fontsize=\(size)",
            "fontcolor=\(ffColor(color, opacity: opacity))",
        ].joined(separator: ":")
    }

    /// `#rrggbb[aa]` and an opacity as ffmpeg's `0xrrggbb@alpha`.
    static func ffColor(_ hex: String, opacity: Double) -> String {
        let digits = hex.dropFirst()
        let rgb = String(digits.prefix(6))
        let alpha = digits.count == 8 ? Double(Int(digits.suffix(2), radix: 16) ?? 255) / 255 : 1
        return "0x\(rgb)@\(fmt(alpha * opacity))"
    }

    static func fmt(_ value: Double) -> String {
        String(format: "%.3f", max(0, min(1, value)))
    }

    /// Escapes a tee slave's file name or URL (the slave list is split on `|` with `\\` escapes).
    static func teeEscape(_ value: String) -> String {
        backslash(value, "\\|[]")
    }

    /// Escapes a tee slave's option value: one level for the option list (`:` separates options), one for
    /// the slave list around it.
    static func teeOption(_ value: String) -> String {
        teeEscape(backslash(value, "\\:"))
    }

    static func backslash(_ value: String, _ special: String) -> String {
        var out = ""
        for character in value {
            if special.contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// Escapes an option value for a filter graph (`:` `\` `'` `,` `;` `[` `]` are special at both levels).
    static func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            if "\\:',;[]".contains(character) { out += "\\\\" }
            out.append(character)
        }
        return out
    }
}
