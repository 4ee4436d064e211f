import DequeModule
import Foundation
import HubCore
import NIOCore

/// The newest frames of a topic, for replay to clients that connect later: at most `capacity` frames, none
/// older than `maxAge`.
struct HistoryRing {
    struct Policy: Sendable {
        let capacity: Int
        let maxAge: TimeInterval
    }

    let policy: Policy
    private var entries: Deque<(at: Date, frame: ByteBuffer, visibility: EventVisibility)> = []

    init(policy: Policy) {
        self.policy = policy
    }

    mutating func append(_ frame: ByteBuffer, at date: Date, visibility: EventVisibility) {
        entries.append((date, frame, visibility))
        if entries.count > policy.capacity { entries.removeFirst(entries.count - policy.capacity) }
    }

    /// The frames still young enough at `now` that `audience` may see, oldest first.
    mutating func frames(at now: Date, for audience: Audience) -> [ByteBuffer] {
        while let first = entries.first, now.timeIntervalSince(first.at) > policy.maxAge {
            entries.removeFirst()
        }
        return entries.compactMap { $0.visibility.admits(audience) ? $0.frame : nil }
    }
}
