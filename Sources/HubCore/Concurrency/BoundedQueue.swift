import DequeModule
import Synchronization

/// A multi-producer, single-consumer queue with a fixed capacity.
///
/// Producers never wait: ``push(_:)`` answers `false` when the queue is full and the element is not
/// queued (the caller counts or handles the drop). The consumer takes elements in batches, waiting while
/// the queue is empty, which lets it turn a burst into one database round trip or one network write.
public final class BoundedQueue<Element: Sendable>: Sendable {
    private struct State {
        var elements: Deque<Element> = []
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) {
        precondition(capacity > 0, "capacity must be positive")
        self.capacity = capacity
    }

    /// Queues `element`; `false` (and nothing queued) when the queue is full or finished.
    @discardableResult
    public func push(_ element: Element) -> Bool {
        let waiter: CheckedContinuation<Void, Never>?
        let accepted: Bool
        (accepted, waiter) = state.withLock { state in
            guard !state.finished, state.elements.count < capacity else { return (false, nil) }
            state.elements.append(element)
            let waiter = state.waiter
            state.waiter = nil
            return (true, waiter)
        }
        waiter?.resume()
        return accepted
    }

    /// Puts elements back at the front, e.g. a batch that failed to send; those over capacity are dropped.
    /// - Returns: how many were dropped.
    @discardableResult
    public func requeueFront(_ batch: [Element]) -> Int {
        state.withLock { state in
            let room = max(0, capacity - state.elements.count)
            let kept = batch.prefix(room)
            state.elements.insert(contentsOf: kept, at: 0)
            return batch.count - kept.count
        }
    }

    /// The number of queued elements.
    public var count: Int { state.withLock { $0.elements.count } }

    /// Stops accepting elements; the consumer still drains what is queued, then gets `nil`.
    public func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Takes up to `maxCount` elements, waiting while the queue is empty. `nil` once finished and drained,
    /// or when the calling task is cancelled. Only one consumer may call this at a time.
    public func popBatch(maxCount: Int) async -> [Element]? {
        while true {
            if Task.isCancelled { return nil }
            let batch: [Element]? = state.withLock { state in
                if state.elements.isEmpty { return state.finished ? [] : nil }
                let count = min(maxCount, state.elements.count)
                let batch = Array(state.elements.prefix(count))
                state.elements.removeFirst(count)
                return batch
            }
            if let batch { return batch.isEmpty ? nil : batch }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if !state.elements.isEmpty || state.finished { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    let waiter = state.waiter
                    state.waiter = nil
                    return waiter
                }
                waiter?.resume()
            }
        }
    }
}
