import Crypto
import Foundation
import HLS
import HubCore
import Logging
import NIOCore

/// The fetch loop of one recording (RFC 8216 section 6.3.4): reload the media playlist every target
/// duration (half of it when unchanged, backing off on errors), download new segments concurrently with a
/// bound, store each atomically, and index it. Gaps count as missed segments and start a discontinuity;
/// a source restart starts one too. Errors move the recording to `stalled`; new segments bring it back.
struct RecordingWorker: Sendable {
    let runtime: RecordingRuntime
    let supervisor: RecorderSupervisor
    let logger: Logger

    /// Segments taken from a live playlist when a recording starts (the rest of its window is history).
    static let initialLiveSegments = 6
    /// Most new segments one reload downloads; older ones count as missed.
    static let maxNewPerReload = 100
    /// Segments of a finished (VOD) playlist recorded at most.
    static let maxVODSegments = 50_000
    /// Downloads one recording runs at once.
    static let perRecordingDownloads = 4

    var id: String { runtime.id }

    func run() async {
        var logger = logger
        logger[metadataKey: "recording_id"] = .string(id)
        let snapshot = runtime.snapshot
        var mediaURL = snapshot.mediaURL
        var failures = 0
        if mediaURL == nil || snapshot.inputKind != .hls {
            // Page URLs resolve to short-lived stream URLs: resolve them again on every start.
            mediaURL = nil
            while mediaURL == nil {
                do {
                    let variant = VariantChoice(snapshot.variant) ?? .best
                    let resolved = try await supervisor.preprocessor.resolve(snapshot.sourceURL, kind: snapshot.inputKind, variant: variant)
                    mediaURL = resolved
                    supervisor.change(runtime) { $0.mediaURL = resolved; $0.error = nil }
                } catch {
                    failures += 1
                    runtime.metrics.errors.increment()
                    if !error.transient || failures >= 5 {
                        logger.warning("recording failed to start", metadata: ["error": "\(error.description)"])
                        supervisor.change(runtime) { $0.state = .failed; $0.error = error.description; $0.errors += 1; $0.desiredRunning = false; $0.stoppedAt = Timestamp.now() }
                        return
                    }
                    supervisor.change(runtime) { $0.state = .stalled; $0.error = error.description; $0.errors += 1 }
                    guard await runtime.stop.sleep(for: Self.backoff(failures, target: 4)) else { return supervisor.finishStopped(runtime) }
                }
            }
        }
        guard var url = mediaURL else { return }
        failures = 0
        var lastBody: ByteBuffer?
        var lastChange = ContinuousClock.now
        var target = 4.0
        var sawLive = false
        var masterHops = 0
        while !runtime.stop.isFired && !Task.isCancelled {
            let began = ContinuousClock.now
            let outcome = await reload(url, lastBody: lastBody)
            switch outcome {
            case .failed(let why, let fatal):
                failures += 1
                runtime.metrics.errors.increment()
                supervisor.change(runtime) { $0.errors += 1; $0.error = why; if !fatal { $0.state = .stalled } }
                if fatal {
                    logger.warning("recording failed", metadata: ["error": "\(why)"])
                    supervisor.change(runtime) { $0.state = .failed; $0.desiredRunning = false; $0.stoppedAt = Timestamp.now() }
                    return
                }
                guard await runtime.stop.sleep(for: Self.backoff(failures, target: target)) else { break }
                continue
            case .master(let next):
                masterHops += 1
                guard masterHops <= 2, next != url else {
                    supervisor.change(runtime) { $0.state = .failed; $0.error = "the media playlist URL answers a master playlist that points back to itself"; $0.desiredRunning = false; $0.stoppedAt = Timestamp.now() }
                    return
                }
                url = next
                supervisor.change(runtime) { $0.mediaURL = next }
                continue
            case .unchanged:
                failures = 0
                let quiet = ContinuousClock.now - lastChange
                if quiet > .seconds(max(3 * target, 10)) && runtime.snapshot.state != .stalled {
                    supervisor.change(runtime) { $0.state = .stalled; $0.error = "no new segments for \(Int(quiet.components.seconds)) s" }
                }
                guard await runtime.stop.sleep(for: .seconds(max(0.5, target / 2))) else { break }
                continue
            case .media(let playlist, let body):
                masterHops = 0
                failures = 0
                lastBody = body
                lastChange = ContinuousClock.now
                target = Double(max(1, playlist.targetDuration))
                if !playlist.endList { sawLive = true }
                let committed = await take(playlist, from: url, first: !sawLive || runtime.state.withLock { $0.lastSourceSequence == nil })
                if committed > 0 {
                    let current = runtime.snapshot
                    if current.state != .recording || current.error != nil {
                        supervisor.change(runtime) { $0.state = .recording; $0.error = nil }
                    }
                }
                if playlist.endList {
                    if !sawLive {
                        // A finished (VOD) playlist: all of it is recorded.
                        supervisor.change(runtime) { $0.state = .stopped; $0.error = nil; $0.desiredRunning = false; $0.stoppedAt = Timestamp.now() }
                        return
                    }
                    supervisor.change(runtime) { $0.state = .stalled; $0.error = "the source ended the stream (EXT-X-ENDLIST); waiting for it to return" }
                    failures += 1
                    guard await runtime.stop.sleep(for: Self.backoff(failures, target: target)) else { break }
                    continue
                }
                let elapsed = ContinuousClock.now - began
                guard await runtime.stop.sleep(for: max(.milliseconds(200), .seconds(target) - elapsed)) else { break }
            }
        }
        if runtime.stop.isFired { supervisor.finishStopped(runtime) }
    }

    /// Exponential backoff from half a target duration, at most 30 s.
    static func backoff(_ failures: Int, target: Double) -> Duration {
        .seconds(min(30, max(1, target / 2) * pow(2, Double(min(failures, 8) - 1))))
    }

    enum Reload {
        case media(MediaPlaylist, ByteBuffer)
        case master(String)
        case unchanged
        case failed(String, fatal: Bool)
    }

    func reload(_ url: String, lastBody: ByteBuffer?) async -> Reload {
        let response: GuardedFetcher.Response
        do {
            response = try await supervisor.fetcher.get(url, limit: PreProcessor.playlistLimit, deadline: .now + .seconds(10))
        } catch {
            return .failed("playlist: \(error.description)", fatal: PreProcessor.isRefusal(error))
        }
        guard response.status == 200 else { return .failed("playlist: HTTP \(response.status)", fatal: false) }
        if let lastBody, lastBody == response.body { return .unchanged }
        do {
            switch try Playlist.parse(bytes: response.body.readableBytesView, limits: PreProcessor.playlistLimits) {
            case .media(let playlist): return .media(playlist, response.body)
            case .master(let master):
                let choice = VariantChoice(runtime.snapshot.variant) ?? .best
                guard let variant = master.variant(choice), let next = Playlist.resolve(variant.uri, against: response.url) else {
                    return .failed("the master playlist has no usable variant", fatal: true)
                }
                return .master(next)
            }
        } catch {
            return .failed("playlist: \(error)", fatal: false)
        }
    }

    /// Downloads and commits the segments of `playlist` not recorded yet; answers how many were committed.
    func take(_ playlist: MediaPlaylist, from url: String, first: Bool) async -> Int {
        let segments = playlist.segments
        guard let newest = segments.last?.sequence else { return 0 }
        let (last, lastEnd) = runtime.state.withLock { ($0.lastSourceSequence, $0.lastEndsAt) }
        var fresh: ArraySlice<Segment>
        var missed = 0
        var discontinuity = false
        if let last {
            if newest < last - 1 {
                // The media sequence went back: the source restarted.
                fresh = segments[...]
                discontinuity = true
            } else {
                fresh = segments.drop { $0.sequence <= last }
                if let head = fresh.first, head.sequence > last + 1 {
                    missed += head.sequence - last - 1
                    discontinuity = true
                }
            }
        } else {
            fresh = playlist.endList ? segments[...] : segments.suffix(Self.initialLiveSegments)
        }
        // A live playlist that jumps far ahead is caught up from its newest segments; a finished (VOD) playlist is
        // recorded whole, as promised (up to a day of segments).
        let cap = playlist.endList && first ? Self.maxVODSegments : Self.maxNewPerReload
        if fresh.count > cap {
            missed += fresh.count - cap
            fresh = fresh.suffix(cap)
            discontinuity = true
        }
        if missed > 0 {
            runtime.metrics.missed.increment(by: Int64(missed))
            supervisor.change(runtime) { $0.missed += missed }
        }
        guard !fresh.isEmpty else { return 0 }
        if discontinuity { runtime.state.withLock { $0.pendingDiscontinuity = true } }

        // Initialisation sections (fMP4), once per distinct URI.
        var maps: [String: String] = [:]
        for segment in fresh {
            guard let map = segment.map, let mapURL = Playlist.resolve(map.uri, against: url), maps[mapURL] == nil else { continue }
            let name = "init-" + SegmentStore.padded(runtime.state.withLock { $0.nextSequence })
            if let existing = supervisor.knownMap(runtime.id, url: mapURL) {
                maps[mapURL] = existing
                continue
            }
            switch await download(mapURL, limit: 4 << 20) {
            case .success(let body, _):
                do {
                    try await supervisor.store.write(body, recording: runtime.id, name: name)
                    maps[mapURL] = name
                    supervisor.rememberMap(runtime.id, url: mapURL, name: name)
                } catch {
                    supervisor.change(runtime) { $0.errors += 1; $0.error = "storing an init section: \(error)" }
                }
            case .failure(let why):
                supervisor.change(runtime) { $0.errors += 1; $0.error = "init section: \(why)" }
            }
        }

        // Download concurrently (bounded here and over all recordings), commit in order.
        let items = Array(fresh)
        var results = [DownloadResult?](repeating: nil, count: items.count)
        await withTaskGroup(of: (Int, DownloadResult).self) { group in
            var next = 0
            func start(_ index: Int) {
                let segment = items[index]
                group.addTask {
                    guard let segmentURL = Playlist.resolve(segment.uri, against: url) else { return (index, .failure("an invalid segment URI")) }
                    let limit = supervisor.settings.maxSegmentBytes
                    let seconds = max(10, 3 * segment.duration)
                    return (index, await download(segmentURL, limit: limit, timeout: seconds))
                }
            }
            while next < min(items.count, Self.perRecordingDownloads) { start(next); next += 1 }
            while let (index, result) = await group.next() {
                results[index] = result
                if next < items.count { start(next); next += 1 }
            }
        }

        var committed = 0
        let now = Timestamp.now()
        // Start times: the source's program date time, else right after the previous segment, else estimated
        // back from now.
        var remaining = items.reduce(0) { $0 + $1.duration }
        var previousEnd = discontinuity || first ? nil : lastEnd
        for (index, segment) in items.enumerated() {
            defer { remaining -= segment.duration }
            guard case .success(let body, let milliseconds)? = results[index] else {
                if case .failure(let why)? = results[index] {
                    runtime.metrics.missed.increment()
                    runtime.metrics.errors.increment()
                    supervisor.change(runtime) { $0.missed += 1; $0.errors += 1; $0.error = "segment \(segment.sequence): \(why)" }
                    runtime.state.withLock { $0.pendingDiscontinuity = true; $0.lastSourceSequence = segment.sequence }
                    previousEnd = nil
                }
                continue
            }
            var startsAt = segment.programDateTime ?? previousEnd ?? (now - remaining)
            if segment.programDateTime == nil, let end = previousEnd, end < now - remaining - 30 { startsAt = now - remaining }
            let (sequence, pending) = runtime.state.withLock { ($0.nextSequence, $0.pendingDiscontinuity) }
            let mapName = segment.map.flatMap { Playlist.resolve($0.uri, against: url) }.flatMap { maps[$0] }
            let name = SegmentStore.segmentName(sequence, sourceURI: segment.uri, fragmented: mapName != nil)
            do {
                try await supervisor.store.write(body, recording: runtime.id, name: name)
            } catch {
                supervisor.change(runtime) { $0.errors += 1; $0.error = "storing a segment: \(error)" }
                continue
            }
            let key = segment.key.map { Self.absolute($0, against: url) }
            let recorded = RecordedSegment(sequence: sequence, fileName: name, duration: segment.duration, startsAt: startsAt,
                                           discontinuity: pending || segment.discontinuity || (first && committed == 0 && sequence > 0),
                                           map: mapName, key: key?.method == "NONE" ? nil : key)
            let checksum = SHA256.hash(data: body.readableBytesView).map { String(format: "%02x", $0) }.joined()
            runtime.state.withLock { $0.pendingDiscontinuity = false }
            runtime.append(recorded, sourceSequence: segment.sequence, size: body.readableBytes, fetchMilliseconds: milliseconds, now: Timestamp.now())
            runtime.metrics.fetch.recordNanoseconds(Int64(milliseconds * 1_000_000))
            supervisor.enqueue(IndexedSegment(recording: runtime.id, segment: recorded, sourceSequence: segment.sequence, size: body.readableBytes,
                                              checksum: checksum, fetchMilliseconds: milliseconds, createdAt: now))
            previousEnd = recorded.endsAt
            committed += 1
        }
        if committed > 0 { supervisor.segmentsCommitted(runtime) }
        return committed
    }

    enum DownloadResult: Sendable {
        case success(ByteBuffer, milliseconds: Double)
        case failure(String)
    }

    func download(_ url: String, limit: Int, timeout: Double = 10) async -> DownloadResult {
        await supervisor.downloads.wait()
        defer { supervisor.downloads.signal() }
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await supervisor.fetcher.get(url, limit: limit, deadline: .now + .seconds(timeout))
                guard response.status == 200 || response.status == 206 else {
                    if response.status >= 500 && attempt < 2 { continue }
                    return .failure("HTTP \(response.status)")
                }
                let elapsed = ContinuousClock.now - started
                return .success(response.body, milliseconds: Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
            } catch {
                if case .timedOut = error, attempt < 2 { continue }
                if case .transport = error, attempt < 2 { continue }
                return .failure(error.description)
            }
        }
    }

    /// The key with its URI made absolute, so players fetch it from the source.
    static func absolute(_ key: EncryptionKey, against base: String) -> EncryptionKey {
        guard let uri = key.uri, let resolved = Playlist.resolve(uri, against: base), resolved != uri else { return key }
        let attributes = key.attributes.map { $0.hasPrefix("URI=") ? "URI=\"\(resolved)\"" : $0 }
        return EncryptionKey(method: key.method, uri: resolved, attributes: attributes)
    }
}
