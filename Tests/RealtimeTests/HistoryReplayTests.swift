import Foundation
import HubCore
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import NIOCore
@testable import Realtime
import Testing

@Suite struct HistoryReplayTests {
    /// A bare application with one hub topic that keeps the last 10 frames for 300 s.
    func withReplayApp(clock: ManualWallClock, _ body: @Sendable (WebSocketHub, any TestClientProtocol) async throws -> Void) async throws {
        let hub = WebSocketHub(maxQueuedBytes: 1 << 20, historyPolicies: [("replay:", 10, 300)], clock: clock,
                               logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
        let routes = HubWebSocketRoutes()
        routes.add("/replay") { _, _ in
            HubWebSocketRoutes.Accepted(topic: "replay:room", identity: .anonymous, initialFrames: [WebSocketWire.textFrame(ByteBuffer(string: "welcome"))]) { text, connection in
                connection.send(WebSocketWire.textFrame(ByteBuffer(string: "echo:" + text)))
            }
        }
        let router = Router(context: HubRequestContext.self)
        let app = Application(router: router, server: .hub(routes: routes, hub: hub, maxFrameSize: 1 << 16),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in try await body(hub, client) }
    }

    @Test func newClientGetsTheLastTenFramesOldestFirstThenLiveOnes() async throws {
        let clock = ManualWallClock()
        try await withReplayApp(clock: clock) { hub, client in
            for index in 1...15 { hub.broadcast(text: ByteBuffer(string: "m\(index)"), to: "replay:room", visibility: .everyone) }
            let probe = WebSocketProbe(port: client.port!, path: "/replay")
            let received1 = try await probe.next()
            #expect(received1 == "welcome")
            var replayed: [String] = []
            for _ in 0..<10 { replayed.append(try await probe.next()) }
            #expect(replayed == (6...15).map { "m\($0)" })
            probe.send("sync")
            let received2 = try await probe.next()
            #expect(received2 == "echo:sync")
            hub.broadcast(text: ByteBuffer(string: "live"), to: "replay:room", visibility: .everyone)
            let received3 = try await probe.next()
            #expect(received3 == "live")
            await probe.close()
        }
    }

    @Test func framesOlderThanTheMaximumAgeAreNotReplayed() async throws {
        let clock = ManualWallClock()
        try await withReplayApp(clock: clock) { hub, client in
            hub.broadcast(text: ByteBuffer(string: "old"), to: "replay:room", visibility: .everyone)
            clock.advance(by: 200)
            hub.broadcast(text: ByteBuffer(string: "recent"), to: "replay:room", visibility: .everyone)
            clock.advance(by: 150)  // "old" is now 350 s old, "recent" 150 s
            let probe = WebSocketProbe(port: client.port!, path: "/replay")
            let received4 = try await probe.next()
            #expect(received4 == "welcome")
            let received5 = try await probe.next()
            #expect(received5 == "recent")
            probe.send("sync")
            let received6 = try await probe.next()
            #expect(received6 == "echo:sync")
            await probe.close()
        }
    }

    @Test func historyRingKeepsCapacityAndAge() {
        var ring = HistoryRing(policy: .init(capacity: 3, maxAge: 10))
        let start = Date(timeIntervalSince1970: 0)
        for index in 0..<5 { ring.append(ByteBuffer(string: "\(index)"), at: start.addingTimeInterval(Double(index)), visibility: .everyone) }
        #expect(ring.frames(at: start.addingTimeInterval(5), for: .anonymous).map { String(buffer: $0) } == ["2", "3", "4"])
        #expect(ring.frames(at: start.addingTimeInterval(13), for: .anonymous).map { String(buffer: $0) } == ["3", "4"])
        #expect(ring.frames(at: start.addingTimeInterval(100), for: .anonymous).isEmpty)
    }

    @Test func historyReplaysOnlyWhatTheAudienceMaySee() {
        var ring = HistoryRing(policy: .init(capacity: 10, maxAge: 60))
        let now = Date(timeIntervalSince1970: 0)
        ring.append(ByteBuffer(string: "community 1"), at: now, visibility: .community(1))
        ring.append(ByteBuffer(string: "community 2"), at: now, visibility: .community(2))
        ring.append(ByteBuffer(string: "viewers"), at: now, visibility: .viewers)
        #expect(ring.frames(at: now, for: .community(1)).map { String(buffer: $0) } == ["community 1"])
        #expect(ring.frames(at: now, for: .role(.viewer)).map { String(buffer: $0) } == ["viewers"])
        #expect(ring.frames(at: now, for: .role(.editor)).map { String(buffer: $0) } == ["community 1", "community 2", "viewers"])
        #expect(ring.frames(at: now, for: .anonymous).isEmpty)
    }

    @Test func eventFilterSemantics() {
        var filter = EventFilter.everything
        #expect(filter.accepts("x"))
        filter.subscribe(["a"])
        #expect(filter == .only(["a"]))
        filter.subscribe(["b"])
        filter.unsubscribe(["a"])
        #expect(filter == .only(["b"]))
        filter.subscribe(["*"])
        filter.unsubscribe(["c"])
        #expect(filter.accepts("b") && !filter.accepts("c"))
        filter.unsubscribe(["*"])
        #expect(!filter.accepts("b"))
    }

    @Test func eventFrameSplicesTheTypeInFront() {
        let envelope = EventEnvelope(type: "t", payload: ByteBuffer(string: #" {"a":1}"#), origin: "o", sequence: 1, publishedAtMicros: 0)
        let empty = EventEnvelope(type: "t", payload: ByteBuffer(string: "{ }"), origin: "o", sequence: 1, publishedAtMicros: 0)
        #expect(Self.payload(of: EventsForwarder.frame(for: envelope)) == #"{"event":"t","a":1}"#)
        #expect(Self.payload(of: EventsForwarder.frame(for: empty)) == #"{"event":"t" }"#)
    }

    static func payload(of frame: ByteBuffer) -> String {
        var frame = frame
        frame.moveReaderIndex(forwardBy: 2)
        return String(buffer: frame)
    }
}
