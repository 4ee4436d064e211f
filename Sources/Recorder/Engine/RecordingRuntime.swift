import DequeModule
import Foundation
import HLS
import HubCore
import Metrics
import NIOCore
import Synchronization

/// Fires once; any number of tasks can wait for it.
final class StopSignal: Sendable {
    private let state = Mutex<(fired: Bool, waiters: [UInt64: CheckedContinuation<Void, Never>], next: UInt64)>((false, [:], 0))

    var isFired: Bool { state.withLock { $0.fired } }

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.fired else { return [] }
            state.fired = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until fired or the task is cancelled.
    func wait() async {
        let id = state.withLock { state -> UInt64 in state.next += 1; return state.next }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// Sleeps for `duration`; answers false when the signal fired (or the task was cancelled) first.
    func sleep(for duration: Duration) async -> Bool {
        if isFired || Task.isCancelled { return false }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await Task.sleep(for: duration)) != nil }
            group.addTask { await self.wait(); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first && !self.isFired
        }
    }
}

/// One running recording's in-memory state: its row, the recent end of its index (for live playlists), the
/// rendered live playlists, and what the fetch loop needs to continue.
final class RecordingRuntime: Sendable {
    /// Segments kept in memory for live windows.
    static let recentCapacity = 64

    struct State {
        var recording: Recording
        var recent = Deque<RecordedSegment>()
        /// Discontinuities of segments that left `recent`.
        var discontinuitiesDropped = 0
        /// Rendered live playlists by URI prefix, with the first sequence they list.
        var liveCache: [String: (body: ByteBuffer, first: Int)] = [:]
        var nextSequence = 0
        var lastSourceSequence: Int?
        var lastEndsAt: Double?
        var fetchTotalMilliseconds: Double = 0
        var fetchCount = 0
        /// Counters changed since the last save.
        var dirty = false
        var lastPublished: Recording?
        var lastPublishedAt: Double = 0
        var pendingDiscontinuity = false
        var probed = false
        var newestFile: String?
        var newestChanged = false
    }

    let id: String
    let stop = StopSignal()
    let state: Mutex<State>
    let metrics: RecordingMetrics

    init(recording: Recording, metrics: RecordingMetrics) {
        self.id = recording.id
        self.state = Mutex(State(recording: recording))
        self.metrics = metrics
    }

    var snapshot: Recording { state.withLock { $0.recording } }

    /// Changes the row (state, error, media info…); answers the new snapshot.
    @discardableResult
    func update(_ change: (inout Recording) -> Void) -> Recording {
        let stopping = stop.isFired
        return state.withLock { state in
            change(&state.recording)
            // Once stopped, a fetch loop finishing its round cannot make it active again.
            if stopping && state.recording.state.isActive { state.recording.state = .stopped }
            state.recording.updatedAt = Timestamp.now()
            state.dirty = true
            return state.recording
        }
    }

    /// Adds a committed segment: counters, the recent window, invalidated playlists.
    func append(_ segment: RecordedSegment, sourceSequence: Int, size: Int, fetchMilliseconds: Double, now: Double) {
        state.withLock { state in
            state.recent.append(segment)
            while state.recent.count > Self.recentCapacity {
                if state.recent.removeFirst().discontinuity { state.discontinuitiesDropped += 1 }
            }
            state.liveCache = [:]
            state.nextSequence = segment.sequence + 1
            state.lastSourceSequence = sourceSequence
            state.lastEndsAt = segment.endsAt
            state.fetchTotalMilliseconds += fetchMilliseconds
            state.fetchCount += 1
            state.recording.segments += 1
            state.recording.bytes += size
            state.recording.lastSegmentAt = now
            state.recording.meanFetchMilliseconds = state.fetchTotalMilliseconds / Double(state.fetchCount)
            state.recording.updatedAt = now
            state.newestFile = segment.fileName
            state.newestChanged = true
            state.dirty = true
        }
        metrics.segments.increment()
        metrics.bytes.increment(by: Int64(size))
    }

    /// Drops segments retention deleted from the recent window.
    func forget(through sequence: Int) {
        state.withLock { state in
            while let first = state.recent.first, first.sequence <= sequence {
                if first.discontinuity { state.discontinuitiesDropped += 1 }
                state.recent.removeFirst()
                state.liveCache = [:]
            }
        }
    }

    /// The live playlist (last 5 segments), rendered once per new segment; with the first sequence it lists.
    func livePlaylist(uriPrefix: String) -> (body: ByteBuffer, first: Int)? {
        state.withLock { state in
            if let cached = state.liveCache[uriPrefix] { return cached }
            guard let playlist = PlaylistWindows.live(Array(state.recent), count: 5, uriPrefix: uriPrefix,
                                                      discontinuitiesBefore: state.discontinuitiesDropped) else { return nil }
            let entry = (body: ByteBuffer(string: playlist.render()), first: playlist.mediaSequence)
            state.liveCache[uriPrefix] = entry
            return entry
        }
    }
}

/// A recording's series in /metrics.
struct RecordingMetrics: Sendable {
    let segments: Counter
    let bytes: Counter
    let missed: Counter
    let errors: Counter
    let fetch: Timer

    init(recording: String, factory: any MetricsFactory) {
        let dimensions = [("recording", Recording.metricsRef(recording))]
        segments = Counter(label: "streamhub_recorder_segments_total", dimensions: dimensions, factory: factory)
        bytes = Counter(label: "streamhub_recorder_bytes_total", dimensions: dimensions, factory: factory)
        missed = Counter(label: "streamhub_recorder_missed_segments_total", dimensions: dimensions, factory: factory)
        errors = Counter(label: "streamhub_recorder_errors_total", dimensions: dimensions, factory: factory)
        fetch = Timer(label: "streamhub_recorder_segment_fetch_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
    }
}
