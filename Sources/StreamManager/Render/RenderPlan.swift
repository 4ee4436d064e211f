import Foundation

/// The ffmpeg command for one program: inputs, the filter graph built from its layers (bottom to top) and
/// the outputs. Pure: it reads the program and where things are, and writes nothing.
///
/// Text, slate messages and captions are drawn by `drawtext` from files (`reload=1`), so changing them
/// never restarts ffmpeg: the renderer rewrites the file and the next frames show it. Everything else
/// (a layer added, moved, shown or hidden, another source) is a new graph.
struct RenderPlan: Equatable {
    /// ffmpeg's arguments (without the program path).
    var arguments: [String]
    /// The text each drawtext file must hold, by file path (written before ffmpeg starts and on changes).
    var textFiles: [String: String]

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
        var captions: [Int64: [String]]
        /// Seconds per HLS segment.
        var segmentSeconds = 1
    }

    static func textFile(for layer: Layer, in directory: String) -> String {
        "\(directory)/layer-\(layer.id).txt"
    }

    /// What a captions layer shows: its community's last `lines` lines.
    static func captionText(_ lines: [String], style: Layer.Style) -> String {
        lines.suffix(style.lines).joined(separator: "\n")
    }

    static func make(_ program: Program, paused: Bool, environment env: Environment) -> RenderPlan {
        var arguments = ["-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-nostdin", "-y"]
        var textFiles: [String: String] = [:]
        let size = "\(program.width)x\(program.height)"
        // Input 0: the canvas, paced in real time (it sets the output's clock); input 1: silence.
        arguments += ["-re", "-f", "lavfi", "-i", "color=c=0x101010:s=\(size):r=\(program.fps)"]
        arguments += ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"]
        var filters: [String] = ["[0:v]setpts=PTS-STARTPTS[base0]"]
        var current = "base0"
        var step = 0
        var nextInput = 2
        var audioInput: Int?
        func chain(_ filter: String, extraInput: String? = nil) {
            step += 1
            let label = "base\(step)"
            filters.append("[\(current)]" + (extraInput.map { "[\($0)]" } ?? "") + filter + "[\(label)]")
            current = label
        }
        let layers = program.orderedLayers.filter(\.visible)
        // Live: everything but slates. Paused: only the slates (or a default one) over the canvas; live
        // sources stop being read.
        let shown = paused ? layers.filter { $0.kind == .slate } : layers.filter { $0.kind != .slate }
        if paused && shown.isEmpty {
            let file = "\(env.directory)/paused.txt"
            textFiles[file] = "Paused"
            chain(drawText(file: file, x: "(w-text_w)/2", y: "(h-text_h)/2", size: max(24, program.height / 12), color: "#ffffff", opacity: 1,
                           font: env.fontFile))
        }
        for layer in shown {
            let opacity = layer.opacity
            switch layer.kind {
            case .source:
                guard let recording = layer.recordingID ?? layer.streamID.flatMap({ _ in env.recordingForLayer[layer.id] }) else {
                    // Nothing to play: a slate in its place.
                    chain("drawbox=x=\(layer.x):y=\(layer.y):w=\(layer.width):h=\(layer.height):color=0x202020@\(fmt(opacity)):t=fill")
                    continue
                }
                let input = nextInput
                nextInput += 1
                arguments += ["-reconnect", "1", "-reconnect_streamed", "1", "-reconnect_delay_max", "2",
                              "-i", "\(env.selfURL)/recordings/\(recording)/live.m3u8"]
                if program.audioLayer == layer.id { audioInput = input }
                let source = "src\(layer.id)"
                filters.append("[\(input):v]setpts=PTS-STARTPTS,scale=\(layer.width):\(layer.height),format=yuva420p"
                               + (opacity < 1 ? ",colorchannelmixer=aa=\(fmt(opacity))" : "") + "[\(source)]")
                chain("overlay=x=\(layer.x):y=\(layer.y):eof_action=pass:repeatlast=1", extraInput: source)
            case .text, .slate, .captions:
                // The layer's rectangle filled with its background colour, then its text inside it.
                if layer.style.background.count == 7 || !layer.style.background.hasSuffix("00") {
                    chain("drawbox=x=\(layer.x):y=\(layer.y):w=\(layer.width):h=\(layer.height):color=\(ffColor(layer.style.background, opacity: opacity)):t=fill")
                }
                let text: String
                if layer.kind == .captions {
                    text = captionText(layer.communityID.flatMap { env.captions[$0] } ?? [], style: layer.style)
                } else if let own = layer.text {
                    text = own
                } else {
                    continue
                }
                let file = textFile(for: layer, in: env.directory)
                textFiles[file] = text
                let pad = max(4, layer.style.fontSize / 4)
                chain(drawText(file: file, x: "\(layer.x + pad)", y: "\(layer.y + pad)", size: layer.style.fontSize, color: layer.style.color,
                               opacity: opacity, font: env.fontFile))
            case .wall, .image:
                continue
            }
        }
        filters.append("[\(current)]format=yuv420p[vout]")
        arguments += ["-filter_complex", filters.joined(separator: ";")]
        arguments += ["-map", "[vout]", "-map", audioInput.map { "\($0):a?" } ?? "1:a"]
        let gop = program.fps * env.segmentSeconds
        arguments += ["-c:v", "libx264", "-preset", program.preset, "-tune", "zerolatency", "-b:v", "\(program.videoBitrate)k",
                      "-maxrate", "\(program.videoBitrate)k", "-bufsize", "\(program.videoBitrate * 2)k", "-g", "\(gop)", "-keyint_min", "\(gop)",
                      "-sc_threshold", "0", "-r", "\(program.fps)", "-c:a", "aac", "-b:a", "128k", "-ar", "48000"]
        arguments += ["-f", "hls", "-hls_time", "\(env.segmentSeconds)", "-hls_list_size", "6",
                      "-hls_flags", "delete_segments+append_list+discont_start+independent_segments+omit_endlist",
                      "-hls_segment_filename", "\(env.directory)/seg-%d.ts", "\(env.directory)/live.m3u8"]
        return RenderPlan(arguments: arguments, textFiles: textFiles)
    }

    /// A drawtext filter reading `file` (re-read every frame, so the text changes live).
    static func drawText(file: String, x: String, y: String, size: Int, color: String, opacity: Double, font: String?) -> String {
        let options = [
            font.map { "fontfile=\(escape($0))" } ?? "font=Sans",
            "textfile=\(escape(file))", "reload=1", "expansion=none", "x=\(x)", "y=\(y)", "fontsize=\(size)",
            "fontcolor=\(ffColor(color, opacity: opacity))",
        ]
        return "drawtext=" + options.joined(separator: ":")
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

    /// Escapes a path for a filter option value (`:` `\` `'` `,` `;` `[` `]` are special in filter graphs).
    static func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            if "\\:',;[]".contains(character) { out += "\\\\" }
            out.append(character)
        }
        return out
    }
}
