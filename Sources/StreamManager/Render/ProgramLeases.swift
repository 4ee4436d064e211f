import Foundation
import HubStore
import Synchronization

/// Which instance renders each program: the one holding its lease, `program:<name>` in `hub_leases`. With
/// several instances on one database exactly one ffmpeg renders a program (one push to each RTMP output,
/// one writer of its HLS); the others stand by, serve its output from the holder, and one of them takes it
/// over within a lease period when the holder dies. A held lease is renewed every third of ``duration``;
/// one this instance can no longer renew (taken, or the database silent until it ran out) is given up, and
/// its ffmpeg stops.
final class ProgramLeases: Sendable {
    let leases: Leases
    let owner: String
    let duration: Double
    /// Held leases, by program, with when each runs out.
    private let held = Mutex<[String: Double]>([:])
    /// Programs that should run but another instance renders: tried again at every renewal.
    private let waiting = Mutex<Set<String>>([])
    /// Who holds a program's lease, as last looked up (for requests served from the holder).
    private let holders = Mutex<[String: (owner: String?, at: ContinuousClock.Instant)]>([:])

    init(database: HubDatabase, owner: String, duration: Double) {
        self.leases = Leases(database: database)
        self.owner = owner
        self.duration = duration
    }

    static func leaseName(_ program: String) -> String { "program:\(program)" }

    var interval: Duration { .milliseconds(Int64(duration * 1000 / 3)) }

    /// Held here, with a margin of a tenth of the lease (a renderer never keeps going on a lease about to lapse).
    func isHeld(_ program: String, now: Double = Date().timeIntervalSince1970) -> Bool {
        guard let until = held.withLock({ $0[program] }) else { return false }
        return until - duration / 10 > now
    }

    var heldPrograms: [String] { held.withLock { Array($0.keys) } }
    var waitingPrograms: [String] { waiting.withLock { Array($0) } }

    /// Takes (or keeps) the lease of a program that should run here; answers whether this instance renders it.
    func take(_ program: String) async -> Bool {
        if isHeld(program) { return true }
        return await renew(program)
    }

    /// One try to take or renew the lease. A database that does not answer keeps a held lease until it runs out.
    @discardableResult
    func renew(_ program: String) async -> Bool {
        let now = Date().timeIntervalSince1970
        let taken: Bool
        do {
            taken = try await leases.acquire(Self.leaseName(program), owner: owner, for: duration, now: now)
        } catch {
            return isHeld(program, now: now)
        }
        held.withLock { $0[program] = taken ? now + duration : nil }
        waiting.withLock { if taken { $0.remove(program) } else { $0.insert(program) } }
        if taken { holders.withLock { $0[program] = (owner, .now) } }
        return taken
    }

    /// The program should not run (stopped, deleted): its lease goes back at once, and nothing waits for it.
    func release(_ program: String) async {
        waiting.withLock { _ = $0.remove(program) }
        guard held.withLock({ $0.removeValue(forKey: program) }) != nil else { return }
        holders.withLock { _ = $0.removeValue(forKey: program) }
        try? await leases.release(Self.leaseName(program), owner: owner)
    }

    /// Shutting down: every held lease goes back, so another instance takes the programs over at once.
    func releaseAll() async {
        for program in heldPrograms { await release(program) }
    }

    /// The instance rendering a program now (`nil`: none), looked up at most once a second per program.
    func holder(of program: String) async -> String? {
        if isHeld(program) { return owner }
        if let cached = holders.withLock({ $0[program] }), ContinuousClock.now - cached.at < .seconds(1) { return cached.owner }
        let found = (try? await leases.holder(Self.leaseName(program)))?.owner
        holders.withLock { holders in
            if holders.count > 1_000 { holders.removeAll() }
            holders[program] = (found, .now)
        }
        return found
    }
}
