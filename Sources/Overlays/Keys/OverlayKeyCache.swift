import Synchronization

/// Recent overlay-key answers, so a storm of overlay connects (every OBS source of a community
/// reconnecting after a restart) costs one database lookup per key, not one per connect.
///
/// - One lookup per key at a time: callers asking for a key that is being looked up wait for that lookup.
/// - An answer is kept for ``ttl`` seconds — a wrong key's too, so guessing costs no more lookups than
///   before. A rotated-out key's grace period is checked on every use, so it still ends on time.
/// - A rotation forgets every answer (``forgetAll()``: on the instance that rotated at once, on the
///   others when the rotation event reaches them), and a lookup that was under way when it happened is
///   not kept: it is made again. ``ttl`` bounds what a change no event announced (`streamhub overlay
///   rotate` run beside a live server) can leave behind.
final class OverlayKeyCache: Sendable {
    typealias Validation = OverlayKeys.Validation

    private struct Answer {
        let validation: Validation?
        let at: Double
    }

    /// What a caller waiting for another's lookup is given: its outcome, or `nil` to ask again.
    private typealias Outcome = Result<Validation?, any Error>?

    private struct State {
        var answers: [String: Answer] = [:]
        var waiting: [String: [CheckedContinuation<Outcome, Never>]] = [:]
        var generation: UInt64 = 0
    }

    /// Seconds an answer is kept.
    let ttl: Double
    /// Answers kept at most; past that the cache starts over (a flood of made-up keys cannot grow it).
    let capacity: Int
    private let state = Mutex(State())
    private let lookupCount = Atomic<Int>(0)

    init(ttl: Double, capacity: Int = 4096) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// Database lookups made so far (for tests).
    var lookups: Int { lookupCount.load(ordering: .relaxed) }

    /// The answer for a key's hash at `now`: kept, or from `lookup` (made once for all callers asking at once).
    func validation(for hash: String, now: Double, lookup: () async throws -> Validation?) async throws -> Validation? {
        enum Step { case answer(Validation?), lookUp(UInt64), wait }
        while true {
            let step = state.withLock { state -> Step in
                if let answer = state.answers[hash], answer.at <= now, now - answer.at < ttl { return .answer(answer.validation) }
                if state.waiting[hash] != nil { return .wait }
                state.waiting[hash] = []
                return .lookUp(state.generation)
            }
            switch step {
            case .answer(let validation):
                return Self.live(validation, at: now)
            case .lookUp(let generation):
                let result: Result<Validation?, any Error>
                do { result = .success(try await lookup()) } catch { result = .failure(error) }
                lookupCount.add(1, ordering: .relaxed)
                let current = state.withLock { state -> Bool in
                    let current = state.generation == generation
                    if current, case .success(let validation) = result {
                        if state.answers.count >= capacity { state.answers.removeAll(keepingCapacity: true) }
                        state.answers[hash] = Answer(validation: validation, at: now)
                    }
                    for waiter in state.waiting.removeValue(forKey: hash) ?? [] {
                        // A rotation during the lookup, or a lookup cancelled with its caller: the waiters ask again.
                        var cancelled = false
                        if case .failure(let error) = result { cancelled = error is CancellationError }
                        waiter.resume(returning: current && !cancelled ? result : nil)
                    }
                    return current
                }
                if current { return Self.live(try result.get(), at: now) }
            case .wait:
                let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                    let registered = state.withLock { state -> Bool in
                        guard state.waiting[hash] != nil else { return false }
                        state.waiting[hash]?.append(continuation)
                        return true
                    }
                    // The lookup finished in between: ask again (its answer is kept, if it may be).
                    if !registered { continuation.resume(returning: nil) }
                }
                if let outcome { return Self.live(try outcome.get(), at: now) }
            }
        }
    }

    /// Forgets every answer, and makes lookups under way ask again.
    func forgetAll() {
        state.withLock { state in
            state.answers.removeAll()
            state.generation &+= 1
        }
    }

    /// A kept answer as it stands at `now`: a rotated-out key stops at the end of its grace period.
    private static func live(_ validation: Validation?, at now: Double) -> Validation? {
        guard let validation else { return nil }
        if let until = validation.validUntil, now >= until { return nil }
        return validation
    }
}
