import Foundation
import HubCore
import HubStore
import Logging
import Metrics
import Registry
import ServiceLifecycle
import SQLKit
import Synchronization

/// Keeps every stream's status true: checks each one when it is due (live streams every 5 minutes, the
/// rest every 15, per platform configurable, ±10 % jitter), with bounded concurrency, a request rate
/// per host, and a backoff for streams whose checks fail.
///
/// Due streams are claimed in the database with a lease, so several instances share the work without
/// checking a stream twice. Results are written in batches: the history rows and schedule in one
/// transaction, unchanged statuses as one batched update; a changed status goes through the registry
/// (audited, `stream_updated`) and publishes `stream_status`.
public final class StatusScheduler: Service, Sendable {
    let registry: RegistryService
    let database: HubDatabase
    let probe: StatusProbe
    let settings: HubConfiguration.StatusSettings
    let clock: any WallClock
    let hostLimiter: HostRateLimiter
    /// Checks running at once (the concurrency cap).
    let slots: AsyncSemaphore
    let instanceID: String
    let logger: Logger
    let metrics: StatusMetrics
    static let principal = Principal(kind: .service, id: "status-checker", role: "editor", name: "status-checker")
    /// How long a claim holds: longer than any check can take.
    var lease: Double { settings.timeout * 3 + 30 }

    init(registry: RegistryService, database: HubDatabase, probe: StatusProbe, settings: HubConfiguration.StatusSettings, clock: any WallClock,
         instanceID: String, logger: Logger, metrics: any MetricsFactory) {
        self.registry = registry
        self.database = database
        self.probe = probe
        self.settings = settings
        self.clock = clock
        self.hostLimiter = HostRateLimiter(rate: settings.hostRate)
        self.slots = AsyncSemaphore(settings.concurrency)
        self.instanceID = instanceID
        self.logger = logger
        self.metrics = StatusMetrics(factory: metrics)
    }

    var now: Double { clock.now().timeIntervalSince1970 }

    // MARK: Running

    public func run() async throws {
        var lastEnroll = -Double.infinity
        var lastMaintenance = -Double.infinity
        await withTaskGroup(of: Completion.self) { group in
            var inflight = 0
            var ticking = false
            var finished: [Finished] = []
            var lastFlush = ContinuousClock.now
            var tickDue = true
            var lastClaim = ContinuousClock.now - .seconds(1)
            // Claimed streams (checking, or queued for a check slot or their host's next request slot) are
            // bounded at twice the check slots. Claim in batches (a quarter of that, or whatever is free at
            // each tick) and at most ten times a second: each claim is a write transaction.
            let capacity = settings.concurrency * 2
            let batch = max(1, capacity / 4)
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                do {
                    if now - lastEnroll > 10 { try await enroll(); lastEnroll = now }
                    if now - lastMaintenance > 60 { await maintain(); lastMaintenance = now }
                    let free = capacity - inflight
                    if (free >= batch && ContinuousClock.now - lastClaim > .milliseconds(100)) || (tickDue && free > 0) {
                        tickDue = false
                        lastClaim = .now
                        let due = try await claim(limit: free)
                        for stream in due {
                            group.addTask { .checked(await self.check(stream)) }
                            inflight += 1
                        }
                        metrics.inflight.record(inflight)
                    }
                } catch {
                    logger.warning("status scheduling failed", metadata: ["error": "\(error)"])
                }
                if !ticking {
                    group.addTask { try? await Task.sleep(for: .seconds(1)); return .tick }
                    ticking = true
                }
                // Wait for a check to finish or for the next tick, whichever comes first.
                guard let completion = await group.next() else { continue }
                switch completion {
                case .tick: ticking = false; tickDue = true
                case .checked(let done):
                    inflight -= 1
                    finished.append(done)
                }
                if finished.count >= 200 || (!finished.isEmpty && ContinuousClock.now - lastFlush > .milliseconds(250)) {
                    await flush(finished)
                    finished.removeAll(keepingCapacity: true)
                    lastFlush = .now
                }
            }
            group.cancelAll()
            while let completion = await group.next() {
                if case .checked(let done) = completion { finished.append(done) }
            }
            await flush(finished)
        }
    }

    enum Completion: Sendable {
        case tick
        case checked(Finished)
    }

    /// Checks every stream due now and waits for the results (tests, with an injected clock).
    @discardableResult
    public func runDue() async throws -> Int {
        try await enroll()
        var total = 0
        while true {
            let due = try await claim(limit: settings.concurrency)
            if due.isEmpty { return total }
            let results = await withTaskGroup(of: Finished.self) { group in
                for stream in due { group.addTask { await self.check(stream) } }
                return await group.reduce(into: [Finished]()) { $0.append($1) }
            }
            await flush(results)
            total += results.count
        }
    }

    // MARK: Scheduling

    /// A stream claimed for checking.
    public struct Due: Sendable {
        public let stream: StreamRecord
        let failures: Int
        let previous: StatusProbe.Previous
    }

    /// A check done: what it found, when, and how long it took (seconds).
    public struct Finished: Sendable {
        public let due: Due
        public let result: CheckResult
        public let checkedAt: Double
        public let latency: Double
    }

    /// Gives every active stream without a schedule one, due within a few seconds.
    func enroll() async throws {
        let now = self.now
        let rows = try await database.sql.raw("""
            SELECT id, link FROM streams WHERE is_archived = \(bind: false) AND id NOT IN (SELECT stream_id FROM stream_check_state)
            ORDER BY id LIMIT 50000
            """).all()
        try await schedule(try rows.map { (try $0.decode(column: "id", as: Int64.self), Self.hostKey(try $0.decode(column: "link", as: String.self))) }, at: now)
    }

    /// Inserts schedules for streams that have none (in batches; one another instance inserted meanwhile is skipped).
    func schedule(_ fresh: [(id: Int64, host: String)], at now: Double) async throws {
        for start in stride(from: 0, to: fresh.count, by: 500) {
            let values = fresh[start..<min(start + 500, fresh.count)].map { id, host in
                "(\(bind: id), \(bind: now + 1 + Double(id % 5)), 0, \(bind: host))" as SQLQueryString
            }.joined(separator: ", ")
            let conflict: SQLQueryString = database.kind == .postgres ? " ON CONFLICT (stream_id) DO NOTHING" : ""
            let verb: SQLQueryString = database.kind == .postgres ? "INSERT" : "INSERT OR IGNORE"
            try await database.sql.raw(verb + " INTO stream_check_state (stream_id, next_check_at, failures, host) VALUES " + values + conflict).run()
        }
    }

    /// Claims up to `limit` due streams for this instance. Streams whose host has no free request slot in
    /// the next second are passed over (they stay due), so that a host with many streams does not fill
    /// every check slot with requests waiting on its rate limit while other hosts wait.
    func claim(limit: Int) async throws -> [Due] {
        guard limit > 0 else { return [] }
        let now = self.now
        let until = now + lease + Double.random(in: 0..<0.001)
        let owner = instanceID
        let limiter = hostLimiter
        let perHostLimit = Int(settings.hostRate.rounded(.up)) + 1
        let claimed = try await database.transaction { db -> [(Int64, Int, String?, Double?)] in
            // The longest-due streams of each host first, at most a second's worth of requests per host.
            let rows = try await db.raw("""
                SELECT stream_id, host FROM (
                    SELECT c.stream_id, c.host, c.next_check_at,
                           ROW_NUMBER() OVER (PARTITION BY c.host ORDER BY c.next_check_at) AS position
                    FROM stream_check_state c JOIN streams s ON s.id = c.stream_id
                    WHERE c.next_check_at <= \(bind: now) AND (c.claimed_until IS NULL OR c.claimed_until < \(bind: now)) AND s.is_archived = \(bind: false)
                ) ranked WHERE position <= \(bind: perHostLimit) ORDER BY next_check_at LIMIT \(bind: limit * 4)
                """).all()
            var taken: [Int64] = []
            var perHost: [String: Int] = [:]
            for row in rows where taken.count < limit {
                let host = try row.decode(column: "host", as: String.self)
                let already = perHost[host, default: 0]
                guard limiter.hasRoom(host, beyond: already) else { continue }
                perHost[host] = already + 1
                taken.append(try row.decode(column: "stream_id", as: Int64.self))
            }
            guard !taken.isEmpty else { return [] }
            let list = taken.map { "\(bind: $0)" as SQLQueryString }.joined(separator: ", ")
            try await db.raw("""
                UPDATE stream_check_state SET claimed_by = \(bind: owner), claimed_until = \(bind: until)
                WHERE stream_id IN (\(list)) AND (claimed_until IS NULL OR claimed_until < \(bind: now))
                """).run()
            return try await db.raw("""
                SELECT stream_id, failures, fingerprint, fingerprint_at FROM stream_check_state
                WHERE claimed_by = \(bind: owner) AND claimed_until = \(bind: until)
                """).all().map {
                (try $0.decode(column: "stream_id", as: Int64.self), try $0.decode(column: "failures", as: Int.self),
                 try $0.decode(column: "fingerprint", as: String?.self), try $0.decode(column: "fingerprint_at", as: Double?.self))
            }
        }
        guard !claimed.isEmpty else { return [] }
        let streams = Dictionary(uniqueKeysWithValues: try await registry.streams(ids: claimed.map(\.0)).map { ($0.id, $0) })
        metrics.queueDepth.record(claimed.count)
        return claimed.compactMap { id, failures, fingerprint, since in
            streams[id].map { Due(stream: $0, failures: failures, previous: .init(fingerprint: fingerprint, since: since)) }
        }
    }

    /// What the per-host rate limit counts as one host: host and port.
    static func hostKey(_ link: String) -> String {
        URLComponents(string: link).map { "\($0.host ?? ""):\($0.port ?? 0)" } ?? ""
    }

    /// Runs one check: takes a check slot, then waits for the host's next request slot (so requests
    /// leave spaced as the rate limit says), then checks.
    func check(_ due: Due) async -> Finished {
        await slots.wait()
        defer { slots.signal() }
        await hostLimiter.acquire(Self.hostKey(due.stream.link))
        let started = ContinuousClock.now
        let checkedAt = now
        let result = await probe.check(link: due.stream.link, platform: due.stream.platform, previous: due.previous, now: checkedAt)
        let elapsed = ContinuousClock.now - started
        let latency = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        metrics.record(result, seconds: latency)
        return Finished(due: due, result: result, checkedAt: checkedAt, latency: latency)
    }

    /// Seconds until the next check of a stream with this status on this platform (before jitter and backoff).
    func interval(status: StreamStatus, platform: Platform) -> Double {
        if let custom = settings.platformIntervals[platform.rawValue] { return status == .live ? min(custom, settings.liveInterval) : custom }
        return status == .live ? settings.liveInterval : settings.interval
    }

    /// Writes a batch of results: history and schedules in one transaction, unchanged statuses in one batched
    /// update, and each changed status through the registry.
    func flush(_ batch: [Finished]) async {
        guard !batch.isEmpty else { return }
        var unchanged: [(id: Int64, at: Double, live: Bool)] = []
        var changed: [Finished] = []
        for done in batch {
            if done.result.status == done.due.stream.status { unchanged.append((done.due.stream.id, done.checkedAt, done.result.status == .live)) }
            else { changed.append(done) }
        }
        let rows = batch.map { done -> (Finished, Double, Int, String?, Double?) in
            let failures = done.result.status == .unknown ? done.due.failures + 1 : 0
            let base = interval(status: done.result.status, platform: done.due.stream.platform)
            // Failing checks back off: twice the wait per failure in a row, up to an hour (or the base interval if longer).
            let backoff = failures > 0 ? min(base * Double(1 << min(failures - 1, 10)), max(3600, base)) : base
            let next = done.checkedAt + backoff * Double.random(in: 0.9...1.1)
            let keepSince = done.result.fingerprint != nil && done.result.fingerprint == done.due.previous.fingerprint
            let since = done.result.fingerprint == nil ? nil : (keepSince ? done.due.previous.since : done.checkedAt)
            return (done, next, failures, done.result.fingerprint, since)
        }
        do {
            try await database.transaction { db in
                for (done, next, failures, fingerprint, since) in rows {
                    try await db.raw("""
                        INSERT INTO stream_checks (stream_id, checked_at, status, method, reason, latency_ms)
                        VALUES (\(bind: done.due.stream.id), \(bind: done.checkedAt), \(bind: done.result.status.rawValue), \(bind: done.result.method.rawValue),
                                \(bind: done.result.reason.map { String($0.prefix(500)) }), \(bind: done.latency * 1000))
                        """).run()
                    try await db.raw("""
                        UPDATE stream_check_state SET next_check_at = \(bind: next), failures = \(bind: failures), fingerprint = \(bind: fingerprint),
                        fingerprint_at = \(bind: since), claimed_by = NULL, claimed_until = NULL, host = \(bind: Self.hostKey(done.due.stream.link))
                        WHERE stream_id = \(bind: done.due.stream.id)
                        """).run()
                }
            }
            try await registry.recordChecked(unchanged)
        } catch {
            logger.error("writing status results failed", metadata: ["error": "\(error)", "count": "\(batch.count)"])
        }
        for done in changed { await publishChange(done) }
    }

    func publishChange(_ done: Finished) async {
        var input = StreamInput()
        input.status = .set(done.result.status.rawValue)
        input.lastCheckedAt = .set(Timestamp.iso8601(done.checkedAt))
        if done.result.status == .live { input.lastLiveAt = .set(Timestamp.iso8601(done.checkedAt)) }
        do {
            let stream = try await registry.apply(input, to: done.due.stream.id, action: "status_check", by: Self.principal)
            registry.announce(RegistryEventType.status, stream: stream, fields: [
                ("previous", .string(done.due.stream.status.rawValue)), ("status", .string(done.result.status.rawValue)),
                ("method", .string(done.result.method.rawValue)), ("reason", done.result.reason.map(JSONText.Value.string) ?? .null),
                ("checked_at", .string(Timestamp.iso8601(done.checkedAt))),
            ])
            logger.info("stream status changed", metadata: [
                "stream_id": "\(stream.id)", "from": "\(done.due.stream.status.rawValue)", "to": "\(done.result.status.rawValue)",
                "reason": "\(done.result.reason ?? "")",
            ])
        } catch let error as HubError where error.status == .notFound {
            return  // deleted while it was checked
        } catch {
            logger.warning("recording a status change failed", metadata: ["stream_id": "\(done.due.stream.id)", "error": "\(error)"])
        }
    }

    // MARK: Check now

    /// Checks one stream now (outside the schedule) and records the result like a scheduled check.
    public func checkNow(_ id: Int64) async throws -> (Finished, StreamRecord) {
        let stream = try await registry.stream(id)
        let state = try await database.sql.raw("SELECT failures, fingerprint, fingerprint_at FROM stream_check_state WHERE stream_id = \(bind: id)").first()
        let previous = StatusProbe.Previous(fingerprint: try state?.decode(column: "fingerprint", as: String?.self),
                                            since: try state?.decode(column: "fingerprint_at", as: Double?.self))
        try await schedule([(id, Self.hostKey(stream.link))], at: now)
        let done = await check(Due(stream: stream, failures: try state?.decode(column: "failures", as: Int.self) ?? 0, previous: previous))
        await flush([done])
        return (done, try await registry.stream(id))
    }

    // MARK: Maintenance

    /// Prunes history past its retention and, with the `auto_archive` flag on, archives streams offline
    /// for longer than the configured time.
    func maintain() async {
        let now = self.now
        // Shared tables: swept by the instance holding the maintenance lease only.
        guard database.maintenance.isHeld else { return }
        do {
            try await database.sql.raw("DELETE FROM stream_checks WHERE checked_at < \(bind: now - settings.historyDays * 86_400)").run()
            try await database.sql.raw("DELETE FROM stream_sightings WHERE seen_at < \(bind: now - max(settings.historyDays, 30) * 86_400)").run()
            try await autoArchive(now: now)
        } catch {
            logger.warning("status maintenance failed", metadata: ["error": "\(error)"])
        }
    }

    @discardableResult
    public func autoArchive(now: Double? = nil) async throws -> Int {
        let now = now ?? self.now
        let enabled = try await database.sql.raw("SELECT enabled FROM feature_flags WHERE name = 'auto_archive'").first()?.decode(column: "enabled", as: Bool.self) ?? false
        guard enabled else { return 0 }
        let cutoff = now - settings.autoArchiveAfter
        let ids = try await database.sql.raw("""
            SELECT id FROM streams WHERE is_archived = \(bind: false) AND is_pinned = \(bind: false) AND status = 'offline'
            AND COALESCE(last_live_at, created_at) < \(bind: cutoff) ORDER BY id LIMIT 1000
            """).all().map { try $0.decode(column: "id", as: Int64.self) }
        for id in ids {
            var input = StreamInput()
            input.isArchived = true
            try await registry.apply(input, to: id, action: "auto_archive", by: Self.principal)
        }
        if !ids.isEmpty { logger.notice("auto-archived offline streams", metadata: ["count": "\(ids.count)"]) }
        return ids.count
    }
}

/// Spaces requests to each host (`host:port`) at most `rate` per second.
final class HostRateLimiter: Sendable {
    let interval: Double
    private let nextSlot = Mutex<[String: Double]>([:])

    init(rate: Double) {
        // 10 % spacing margin, so that network jitter cannot bunch more than `rate` arrivals into one second.
        interval = 1.1 / rate
    }

    /// Whether `host` can take `pending` more requests (already handed out) plus one within a quarter second
    /// (so claimed checks do not sit long waiting for their host).
    func hasRoom(_ host: String, beyond pending: Int) -> Bool {
        let now = Date().timeIntervalSince1970
        let next = nextSlot.withLock { max(now, $0[host] ?? 0) }
        return next + Double(pending) * interval < now + max(0.25, interval)
    }

    func acquire(_ host: String) async {
        let reference = Date().timeIntervalSince1970
        let wait = nextSlot.withLock { slots -> Double in
            if slots.count > 100_000 { slots = slots.filter { $0.value > reference } }
            let slot = max(reference, slots[host] ?? 0)
            slots[host] = slot + interval
            return slot - reference
        }
        if wait > 0 { try? await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
    }
}

struct StatusMetrics: Sendable {
    let results: [StreamStatus: Counter]
    let duration: Metrics.Timer
    let queueDepth: Gauge
    let inflight: Gauge

    init(factory: any MetricsFactory) {
        var results: [StreamStatus: Counter] = [:]
        for status in StreamStatus.allCases {
            results[status] = Counter(label: "streamhub_status_checks_total", dimensions: [("result", status.rawValue)], factory: factory)
        }
        self.results = results
        duration = Metrics.Timer(label: "streamhub_status_check_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
        queueDepth = Gauge(label: "streamhub_status_queue_depth", factory: factory)
        inflight = Gauge(label: "streamhub_status_checks_inflight", factory: factory)
    }

    func record(_ result: CheckResult, seconds: Double) {
        results[result.status]?.increment()
        duration.recordNanoseconds(Int64(seconds * 1e9))
    }
}
