import Foundation
import HLS
import HubCore

/// Why a recording cannot start or go on.
struct RecorderFailure: Error, CustomStringConvertible {
    let description: String
    /// Whether trying again later may help (a timeout, a 503) or not (yt-dlp missing, the guard refused).
    let transient: Bool

    init(_ description: String, transient: Bool = true) {
        self.description = description
        self.transient = transient
    }
}

/// The pre-processor: what kind of input a URL is, resolving page URLs to HLS with yt-dlp, master playlists
/// to a variant, and probing recorded media with ffprobe.
struct PreProcessor: Sendable {
    let fetcher: GuardedFetcher
    let ytDLPPath: String
    let ffprobePath: String
    /// yt-dlp runs at once (each costs seconds of CPU; a restart resumes every page recording together).
    let ytDLPSlots = AsyncSemaphore(4)
    static let playlistLimit = 4 << 20
    static var playlistLimits: PlaylistLimits {
        var limits = PlaylistLimits()
        limits.maxBytes = playlistLimit
        limits.maxSegments = 20_000
        return limits
    }

    static func detect(_ url: String) -> InputKind {
        guard let components = URLComponents(string: url), let host = components.host?.lowercased() else { return .other }
        func on(_ domain: String) -> Bool { host == domain || host.hasSuffix("." + domain) }
        if on("twitch.tv") { return .twitch }
        if on("youtube.com") || on("youtu.be") { return .youtube }
        if components.path.lowercased().hasSuffix(".m3u8") { return .hls }
        return .other
    }

    /// The media playlist URL to record: page URLs through yt-dlp, master playlists to the chosen variant.
    func resolve(_ source: String, kind: InputKind, variant: VariantChoice) async throws(RecorderFailure) -> String {
        var url = source
        if kind == .twitch || kind == .youtube {
            url = try await ytDLP(source, variant: variant)
        }
        var visited: Set<String> = []
        for _ in 0..<3 {
            visited.insert(url)
            let response: GuardedFetcher.Response
            do {
                response = try await fetcher.get(url, limit: Self.playlistLimit, deadline: .now + .seconds(15))
            } catch {
                throw RecorderFailure("fetching \(url): \(error.description)", transient: !Self.isRefusal(error))
            }
            guard response.status == 200 else { throw RecorderFailure("fetching \(url): HTTP \(response.status)") }
            let playlist: Playlist
            do {
                playlist = try Playlist.parse(bytes: response.body.readableBytesView, limits: Self.playlistLimits)
            } catch PlaylistError.notAPlaylist where kind == .other && url == source {
                // A web page: ask yt-dlp for the stream in it.
                url = try await ytDLP(source, variant: variant)
                continue
            } catch {
                throw RecorderFailure("\(url) is not a usable playlist: \(error)", transient: false)
            }
            switch playlist {
            case .media:
                return response.url
            case .master(let master):
                guard let chosen = master.variant(variant), let next = Playlist.resolve(chosen.uri, against: response.url) else {
                    throw RecorderFailure("the master playlist at \(url) has no usable variant", transient: false)
                }
                guard !visited.contains(next) else {
                    throw RecorderFailure("the master playlist at \(url) points back to itself", transient: false)
                }
                url = next
            }
        }
        throw RecorderFailure("\(source): master playlists nested more than twice", transient: false)
    }

    static func isRefusal(_ failure: GuardedFetcher.Failure) -> Bool {
        if case .refused = failure { return true }
        return false
    }

    /// `yt-dlp -g`: the stream URL of a page.
    func ytDLP(_ page: String, variant: VariantChoice) async throws(RecorderFailure) -> String {
        let format: String
        switch variant {
        case .best: format = "best"
        case .worst: format = "worst"
        case .maxBandwidth(let bits): format = "best[tbr<=\(max(1, bits / 1000))]/worst"
        }
        await ytDLPSlots.wait()
        defer { ytDLPSlots.signal() }
        let output: ChildProcess.Output
        do {
            output = try await ChildProcess.run(ytDLPPath, ["-g", "-f", format, "--no-playlist", "--no-warnings", "--socket-timeout", "15", "--", page],
                                              timeout: .seconds(45), maxOutput: 64 << 10)
        } catch let failure as ChildProcess.Failure {
            throw RecorderFailure("yt-dlp: \(failure.description)", transient: false)
        } catch {
            throw RecorderFailure("yt-dlp: \(error)", transient: false)
        }
        if output.timedOut { throw RecorderFailure("yt-dlp timed out resolving \(page)") }
        let lines = String(decoding: output.stdout, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init)
        guard output.status == 0, let first = lines.first(where: { $0.hasPrefix("http://") || $0.hasPrefix("https://") }) else {
            let why = String(decoding: output.stderr, as: UTF8.self).split(whereSeparator: \.isNewline).first { $0.contains("ERROR") }
            throw RecorderFailure("yt-dlp found no stream at \(page)" + (why.map { ": \($0)" } ?? ""), transient: false)
        }
        return first
    }

    struct MediaInfo: Sendable, Equatable {
        var codec: String?
        var width: Int?
        var height: Int?
        var fps: Double?
        var bitrate: Int?
    }

    /// ffprobe of a recorded file (never a URL: ffprobe would fetch past the SSRF guard).
    func probe(_ path: String) async -> MediaInfo? {
        guard let output = try? await ChildProcess.run(ffprobePath, ["-v", "error", "-print_format", "json", "-show_streams", "-show_format", path],
                                                     timeout: .seconds(15), maxOutput: 1 << 20),
              output.status == 0,
              let object = try? JSONSerialization.jsonObject(with: output.stdout) as? [String: Any]
        else { return nil }
        var info = MediaInfo()
        let streams = object["streams"] as? [[String: Any]] ?? []
        if let video = streams.first(where: { $0["codec_type"] as? String == "video" }) {
            info.codec = video["codec_name"] as? String
            info.width = video["width"] as? Int
            info.height = video["height"] as? Int
            if let rate = (video["avg_frame_rate"] as? String).flatMap(Self.rate) ?? (video["r_frame_rate"] as? String).flatMap(Self.rate) {
                info.fps = (rate * 100).rounded() / 100
            }
        } else if let audio = streams.first {
            info.codec = audio["codec_name"] as? String
        }
        if let format = object["format"] as? [String: Any], let bits = (format["bit_rate"] as? String).flatMap(Int.init) {
            info.bitrate = bits
        }
        return info
    }

    /// "30000/1001" → 29.97.
    static func rate(_ text: String) -> Double? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let top = Double(parts[0]), let bottom = Double(parts[1]), bottom > 0, top > 0 else { return nil }
        return top / bottom
    }
}
