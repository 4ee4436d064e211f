import Foundation
import HLS
import HubCore
import NIOCore
import Registry
import Synchronization

/// The answer of one check.
public struct CheckResult: Sendable, Equatable {
    public enum Method: String, Sendable {
        case hls, ytDLP = "yt-dlp", http
    }

    public var status: StreamStatus
    public var method: Method
    /// Why it is offline or unknown (or what was seen).
    public var reason: String?
    /// For HLS: the media sequence and last segment, to tell a moving playlist from a stuck one.
    public var fingerprint: String?
}

/// Tells whether a stream is live, by the method its link calls for: direct HLS → the playlist (live while
/// it moves and has no ENDLIST); platform pages → `yt-dlp -J`; anything else → HTTP reachability.
struct StatusProbe: Sendable {
    let fetcher: GuardedFetcher
    let guardrail: SourceURLGuard
    let ytDLP: YtDLPRunner
    let timeout: Duration

    /// What the last check saw of a playlist (fingerprint and when it was first seen), to spot a stuck one.
    struct Previous: Sendable {
        var fingerprint: String?
        var since: Double?
    }

    static let playlistLimit = 2 << 20

    func check(link: String, platform: Platform, previous: Previous, now: Double) async -> CheckResult {
        let deadline = ContinuousClock.now + timeout
        switch Self.method(for: link, platform: platform) {
        case .hls: return await hls(link, previous: previous, now: now, deadline: deadline)
        case .ytDLP: return await ytDLP.check(link, guardrail: guardrail, timeout: timeout)
        case .http:
            // yt-dlp's generic extractor understands many pages (og:video, embedded players); when it does
            // not, or is not installed, the page's reachability is all there is to know.
            if let result = await ytDLP.check(link, guardrail: guardrail, timeout: timeout, unsupportedIsNil: true) { return result }
            return await reachability(link, deadline: deadline)
        }
    }

    static func method(for link: String, platform: Platform) -> CheckResult.Method {
        switch platform {
        case .hls: return .hls
        case .twitch, .youtube, .tiktok, .kick, .facebook, .instagram, .x, .rumble: return .ytDLP
        case .other:
            let path = URLComponents(string: link)?.path.lowercased() ?? ""
            return path.hasSuffix(".m3u8") ? .hls : .http
        }
    }

    // MARK: HLS

    func hls(_ link: String, previous: Previous, now: Double, deadline: ContinuousClock.Instant) async -> CheckResult {
        do {
            var response = try await fetcher.get(link, limit: Self.playlistLimit, deadline: deadline)
            if let offline = Self.goneStatus(response.status) { return CheckResult(status: .offline, method: .hls, reason: offline) }
            guard (200...299).contains(response.status) else { return CheckResult(status: .unknown, method: .hls, reason: "HTTP \(response.status)") }
            var playlist = try Playlist.parse(bytes: response.body.readableBytesView)
            if case .master(let master) = playlist {
                guard let variant = master.variants.first, let url = Playlist.resolve(variant.uri, against: response.url) else {
                    return CheckResult(status: .unknown, method: .hls, reason: "the master playlist's variant URI is invalid")
                }
                response = try await fetcher.get(url, limit: Self.playlistLimit, deadline: deadline)
                if let offline = Self.goneStatus(response.status) { return CheckResult(status: .offline, method: .hls, reason: "variant " + offline) }
                guard (200...299).contains(response.status) else { return CheckResult(status: .unknown, method: .hls, reason: "variant HTTP \(response.status)") }
                playlist = try Playlist.parse(bytes: response.body.readableBytesView)
            }
            guard case .media(let media) = playlist else {
                return CheckResult(status: .unknown, method: .hls, reason: "a master playlist points to another master playlist")
            }
            if media.endList { return CheckResult(status: .offline, method: .hls, reason: "the playlist has ended (EXT-X-ENDLIST)") }
            guard let last = media.segments.last else { return CheckResult(status: .offline, method: .hls, reason: "the playlist has no segments") }
            let fingerprint = "\(media.mediaSequence)|\(last.uri)"
            // Unchanged for longer than three target durations (and at least 30 s): the source has stopped.
            if fingerprint == previous.fingerprint, let since = previous.since, now - since > max(3 * Double(media.targetDuration), 30) {
                return CheckResult(status: .offline, method: .hls, reason: "the playlist has not changed for \(Int(now - since)) s", fingerprint: fingerprint)
            }
            return CheckResult(status: .live, method: .hls, reason: nil, fingerprint: fingerprint)
        } catch let failure as GuardedFetcher.Failure {
            return CheckResult(status: .unknown, method: .hls, reason: failure.description)
        } catch {
            return CheckResult(status: .unknown, method: .hls, reason: "not a valid HLS playlist: \(error)")
        }
    }

    static func goneStatus(_ status: Int) -> String? {
        status == 404 || status == 410 ? "gone (HTTP \(status))" : nil
    }

    // MARK: HTTP

    func reachability(_ link: String, deadline: ContinuousClock.Instant) async -> CheckResult {
        do {
            let response = try await fetcher.get(link, limit: 256 << 10, deadline: deadline)
            if let offline = Self.goneStatus(response.status) { return CheckResult(status: .offline, method: .http, reason: offline) }
            if (200...299).contains(response.status) {
                return CheckResult(status: .unknown, method: .http, reason: "the page answers (HTTP \(response.status)); this site does not say whether it is live")
            }
            return CheckResult(status: .unknown, method: .http, reason: "HTTP \(response.status)")
        } catch .tooLarge(_) {
            return CheckResult(status: .unknown, method: .http, reason: "the page answers; this site does not say whether it is live")
        } catch {
            return CheckResult(status: .unknown, method: .http, reason: error.description)
        }
    }
}

/// `yt-dlp -J` as a subprocess with a timeout and its own concurrency cap.
struct YtDLPRunner: Sendable {
    let path: String
    let slots: AsyncSemaphore

    func check(_ link: String, guardrail: SourceURLGuard, timeout: Duration) async -> CheckResult {
        await check(link, guardrail: guardrail, timeout: timeout, unsupportedIsNil: false) ?? CheckResult(status: .unknown, method: .ytDLP, reason: "unsupported")
    }

    /// With `unsupportedIsNil`, a missing yt-dlp or a URL it has no extractor for answers `nil`.
    func check(_ link: String, guardrail: SourceURLGuard, timeout: Duration, unsupportedIsNil: Bool) async -> CheckResult? {
        if unsupportedIsNil && ChildProcess.locate(path) == nil { return nil }
        do { _ = try await guardrail.check(link) } catch {
            return CheckResult(status: .unknown, method: unsupportedIsNil ? .http : .ytDLP, reason: "refused by the SSRF guard: \(error.description)")
        }
        await slots.wait()
        defer { slots.signal() }
        let seconds = max(1, Int(timeout.components.seconds))
        let output: ChildProcess.Output
        do {
            output = try await ChildProcess.run(path, ["-J", "--no-warnings", "--no-playlist", "--skip-download", "--socket-timeout", String(seconds), "--", link],
                                              timeout: timeout)
        } catch {
            return CheckResult(status: .unknown, method: .ytDLP, reason: "\(error)")
        }
        if output.timedOut { return CheckResult(status: .unknown, method: .ytDLP, reason: "yt-dlp timed out after \(seconds) s") }
        if unsupportedIsNil && output.status != 0 && String(decoding: output.stderr, as: UTF8.self).contains("Unsupported URL") { return nil }
        return Self.interpret(output)
    }

    static func interpret(_ output: ChildProcess.Output) -> CheckResult {
        if output.status == 0, let object = try? JSONSerialization.jsonObject(with: output.stdout) as? [String: Any] {
            let liveStatus = object["live_status"] as? String
            if (object["is_live"] as? Bool) == true || liveStatus == "is_live" {
                return CheckResult(status: .live, method: .ytDLP, reason: nil)
            }
            switch liveStatus {
            case "is_upcoming": return CheckResult(status: .offline, method: .ytDLP, reason: "scheduled, not started yet")
            case "was_live", "post_live": return CheckResult(status: .offline, method: .ytDLP, reason: "the broadcast has ended")
            case "not_live": return CheckResult(status: .offline, method: .ytDLP, reason: "a recording, not a live broadcast")
            default: return CheckResult(status: .offline, method: .ytDLP, reason: "yt-dlp does not report it live")
            }
        }
        let message = String(decoding: output.stderr, as: UTF8.self)
        let lower = message.lowercased()
        let firstError = message.split(separator: "\n").first { $0.contains("ERROR") }.map { String($0.prefix(300)) }
        for marker in ["is offline", "not currently live", "will begin", "has ended", "premieres in", "http error 404", "http error 410", "does not exist", "channel is not live"]
            where lower.contains(marker) {
            return CheckResult(status: .offline, method: .ytDLP, reason: firstError ?? marker)
        }
        return CheckResult(status: .unknown, method: .ytDLP, reason: firstError ?? "yt-dlp exited with status \(output.status)")
    }
}
