import Foundation
import HubCore
import Hummingbird
import HummingbirdTesting
import StreamHub

/// Builds the real application on a private data directory (and database), runs it live on a free port,
/// and hands the test a client; everything is torn down afterwards.
public func withTestApplication<T: Sendable>(
    backend: TestDatabases.Backend = .sqlite,
    clock: any WallClock = SystemWallClock(),
    configure: @Sendable (inout HubConfiguration) -> Void = { _ in },
    _ test: @Sendable (StreamHubApplication, any TestClientProtocol) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    var configuration = HubConfiguration.testing(dataDirectory: directory.path, database: try await TestDatabases.make(backend, in: directory))
    configure(&configuration)
    let application = try await buildApplication(configuration, clock: clock)
    do {
        let result = try await application.app.test(.live) { client in try await test(application, client) }
        await application.shutdown()
        return result
    } catch {
        await application.shutdown()
        throw error
    }
}

/// The service key `HubConfiguration.testing` configures.
public let testServiceKey = "test-service-key-0123456789"
