import Foundation
import HubCore
import Logging
import NIOPosix
import PostgresNIO

/// A directory under the system temp dir, removed by ``remove()``.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "streamhub-test") throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The databases a storage test runs against: SQLite always; PostgreSQL whenever the test command started
/// a throwaway server and exported `STREAMHUB_TEST_DATABASE_URL`.
public enum TestDatabases {
    public enum Backend: String, Sendable, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        public var testDescription: String { rawValue }
    }

    /// The admin URL of the throwaway PostgreSQL server, if there is one.
    public static var postgresURL: String? {
        ProcessInfo.processInfo.environment["STREAMHUB_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Backends available in this run.
    public static var available: [Backend] {
        postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]
    }

    /// A fresh, empty database of `backend` for one test.
    public static func make(_ backend: Backend, in directory: TemporaryDirectory) async throws -> HubConfiguration.Database {
        switch backend {
        case .sqlite:
            return .sqlite(path: (directory.path as NSString).appendingPathComponent("test.sqlite"))
        case .postgres:
            return .postgres(url: try await createPostgresDatabase())
        }
    }

    /// Creates a new database on the test server and answers its URL.
    public static func createPostgresDatabase() async throws -> String {
        guard let admin = postgresURL, var components = URLComponents(string: admin) else {
            throw TestFailure("STREAMHUB_TEST_DATABASE_URL is not set")
        }
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(20).lowercased()
        let configuration = PostgresConnection.Configuration(
            host: components.host ?? "127.0.0.1", port: components.port ?? 5432,
            username: components.user ?? "postgres", password: components.password,
            database: String(components.path.dropFirst()).isEmpty ? "postgres" : String(components.path.dropFirst()),
            tls: .disable)
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: 1, logger: Logger(label: "test-admin")).get()
        defer { Task { try? await connection.close() } }
        _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test-admin"))
        components.path = "/\(name)"
        return components.string ?? admin
    }
}

/// A test failure with a message.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs `body`, failing if it takes longer than `seconds`. A bound on waiting for an awaited event, never a
/// way to wait for one.
public func withDeadline<T: Sendable>(_ seconds: Double, _ what: String = "operation",
                                      _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            throw TestFailure("\(what) did not finish within \(seconds) s")
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw TestFailure("\(what) produced nothing") }
        return first
    }
}

/// Polls `condition` until it holds or `seconds` pass; for state that has no event to await (a counter in
/// another process, a port closing).
public func eventually(_ what: String, within seconds: Double = 10, _ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("\(what) did not happen within \(seconds) s")
}

import Testing
