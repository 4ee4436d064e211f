import HubCore
import HummingbirdBcrypt
import NIOPosix

/// bcrypt password hashing, off the event loops (one hash at cost 12 takes ~250 ms of CPU).
public struct Passwords: Sendable {
    public let cost: UInt8

    public init(cost: UInt8) {
        self.cost = cost
    }

    /// Longest password accepted: bcrypt reads only the first 72 bytes, so longer ones are refused
    /// rather than silently truncated.
    public static let maxBytes = 72
    public static let minCharacters = 8

    /// Checks a new password against the policy.
    public static func validate(_ password: String) throws {
        guard password.count >= minCharacters else { throw HubError.validation("password must be at least \(minCharacters) characters") }
        guard password.utf8.count <= maxBytes else { throw HubError.validation("password must be at most \(maxBytes) bytes") }
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        guard password.utf8.count <= Self.maxBytes else { return false }
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
