import GRPCCore
import GRPCNIOTransportHTTP2
import HubCore
import Logging
import ServiceLifecycle

/// The gRPC server (plaintext HTTP/2 on `STREAMHUB_GRPC_PORT`) as a Service: it serves until graceful
/// shutdown, then lets running calls finish.
public final class GRPCServerService: Service, Sendable {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let transport: HTTP2ServerTransport.Posix
    let logger: Logger

    init(host: String, port: Int, services: [any RegistrableRPCService], interceptors: [any ServerInterceptor], logger: Logger) {
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: port), transportSecurity: .plaintext)
        self.transport = transport
        self.server = GRPCServer(transport: transport, services: services, interceptors: interceptors)
        self.logger = logger
    }

    /// The port the server listens on (useful when it was configured as 0).
    public func listeningPort() async throws -> Int {
        guard let port = try await transport.listeningAddress.ipv4?.port else { throw HubError.unavailable("the gRPC server has no IPv4 address") }
        return port
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await self.server.serve() }
                if let port = try? await self.listeningPort() {
                    self.logger.info("gRPC listening", metadata: ["port": "\(port)"])
                }
            }
        } onGracefulShutdown: {
            self.server.beginGracefulShutdown()
        }
    }
}
