/// Exponential backoff with full jitter for reconnecting connectors: the n-th wait is a random time
/// between half and all of `min(base · 2ⁿ, cap)` seconds. ``reset()`` after a connection proved healthy.
struct Backoff: Sendable {
    let base: Double
    let cap: Double
    private(set) var attempt = 0

    init(base: Double = 1, cap: Double = 60) {
        self.base = base
        self.cap = cap
    }

    mutating func next() -> Duration {
        let ceiling = min(base * Double(1 << min(attempt, 20)), cap)
        attempt += 1
        return .milliseconds(Int(Double.random(in: (ceiling / 2)...ceiling) * 1000))
    }

    mutating func reset() { attempt = 0 }
}
