import Foundation
import HubCore
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import NIOCore
import Realtime
import Testing

@Suite struct HeartbeatTests {
    @Test func aClientThatNeverAnswersPingsIsClosedWhileAnsweringClientsStay() async throws {
        let hub = WebSocketHub(maxQueuedBytes: 1 << 20, pingInterval: .milliseconds(400), logger: Logger(label: "test"),
                               metrics: NOOPMetricsHandler.instance)
        let routes = HubWebSocketRoutes()
        routes.add("/live") { _, _ in
            HubWebSocketRoutes.Accepted(topic: "live", identity: .anonymous) { text, connection in
                connection.send(WebSocketWire.textFrame(ByteBuffer(string: "echo:" + text)))
            }
        }
        let router = Router(context: HubRequestContext.self)
        let app = Application(router: router, server: .hub(routes: routes, hub: hub, maxFrameSize: 1 << 16),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)), services: [hub])
        try await app.test(.live) { client in
            let answering = WebSocketProbe(port: client.port!, path: "/live")
            answering.send("hello")
            let first = try await answering.next()
            #expect(first == "echo:hello")
            let silent = try await SlowSocketClient.open(port: client.port!, path: "/live")
            defer { silent.close() }
            try await eventually("both registered") { hub.connectionCount(topic: "live") == 2 }
            // Two unanswered pings (about 800 ms), then the next tick closes the silent client.
            try await eventually("silent client closed", within: 10) { hub.connectionCount(topic: "live") == 1 }
            try await eventually("silent client's socket closed", within: 10) { silent.serverHasClosed() }
            // The answering client is still served after many ping rounds.
            hub.broadcast(text: ByteBuffer(string: "still here"), to: "live", visibility: .everyone)
            let next = try await answering.next()
            #expect(next == "still here")
            await answering.close()
        }
    }
}
