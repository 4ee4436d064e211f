import Synchronization

/// What each long-running part says about itself, for `GET /health`. Services report; the health route reads.
public final class ServiceHealth: Sendable {
    /// A service's state as shown on /health.
    public enum Status: String, Sendable, Codable {
        case starting, running, degraded, stopping, stopped, failed
    }

    public struct Entry: Sendable, Codable, Equatable {
        public var status: Status
        public var detail: String?
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    public func report(_ service: String, _ status: Status, detail: String? = nil) {
        entries.withLock { $0[service] = Entry(status: status, detail: detail) }
    }

    public var snapshot: [String: Entry] { entries.withLock { $0 } }
}
