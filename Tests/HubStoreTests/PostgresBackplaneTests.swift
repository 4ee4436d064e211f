import Foundation
import HubCore
import HubStore
import HubTestSupport
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Testing

/// Two event buses on one real PostgreSQL, as two instances would be.
@Suite(.enabled(if: TestDatabases.postgresURL != nil, "needs STREAMHUB_TEST_DATABASE_URL"))
struct PostgresBackplaneTests {
    let logger = Logger(label: "test")

    func withTwoBuses(_ body: @Sendable (EventBus, EventBus) async throws -> Void) async throws {
        let url = try await TestDatabases.createPostgresDatabase()
        let databaseA = try HubDatabase.open(.postgres(url: url), logger: logger)
        let databaseB = try HubDatabase.open(.postgres(url: url), logger: logger)
        try await Migrator(database: databaseA, migrations: CoreMigrations.all, logger: logger).migrate()
        let busA = EventBus(instanceID: "a", backplane: try PostgresBackplane(database: databaseA, logger: logger), logger: logger, metrics: NOOPMetricsHandler.instance)
        let busB = EventBus(instanceID: "b", backplane: try PostgresBackplane(database: databaseB, logger: logger), logger: logger, metrics: NOOPMetricsHandler.instance)
        let runner = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await busA.run() }
                group.addTask { try await busB.run() }
                try await group.waitForAll()
            }
        }
        // LISTEN is established asynchronously: wait until a probe event crosses each way.
        try await awaitConnected(from: busA, to: busB)
        try await awaitConnected(from: busB, to: busA)
        do { try await body(busA, busB) } catch { runner.cancel(); throw error }
        runner.cancel()
        _ = await runner.result
        await databaseA.shutdown()
        await databaseB.shutdown()
    }

    func awaitConnected(from sender: EventBus, to receiver: EventBus) async throws {
        let stream = receiver.subscribe(types: ["probe"])
        try await withDeadline(20, "backplane connection") {
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        sender.publish(type: "probe", payload: ByteBuffer(string: "{}"))
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                for await _ in stream { break }
                group.cancelAll()
            }
        }
    }

    @Test func eventsCrossInstancesExactlyOnceInOrder() async throws {
        try await withTwoBuses { busA, busB in
            let onB = busB.subscribe(types: ["transcription"])
            let onA = busA.subscribe(types: ["transcription"])
            let count = 1000
            for index in 1...count {
                try busA.publish(TranscriptionEvent(text: "line \(index)", isFinal: true, sessionID: "s"))
            }
            let texts = try await withDeadline(30, "1000 events on B") {
                var texts: [String] = []
                for await envelope in onB {
                    texts.append(String(buffer: envelope.payload))
                    if texts.count == count { break }
                }
                return texts
            }
            #expect(texts.count == count)
            for (index, text) in texts.enumerated() {
                #expect(text.contains("\"line \(index + 1)\""))
            }
            // A saw its own 1000 exactly once (locally), not again from the backplane.
            let seenOnA = try await withDeadline(10, "A's own events") {
                var seen = 0
                for await _ in onA { seen += 1; if seen == count { break } }
                return seen
            }
            #expect(seenOnA == count)
            busA.publish(type: "transcription", payload: ByteBuffer(string: #"{"text":"marker"}"#))
            let next = try await withDeadline(10, "marker on A") { () -> String? in
                for await envelope in onA { return String(buffer: envelope.payload) }
                return nil
            }
            #expect(next?.contains("marker") == true)
        }
    }

    @Test func payloadsOverTheNotifyLimitTravelThroughTheTable() async throws {
        try await withTwoBuses { busA, busB in
            let onB = busB.subscribe(types: ["big", "small"])
            let bigText = String(repeating: "x", count: 50_000)
            busA.publish(type: "small", payload: ByteBuffer(string: #"{"n":1}"#))
            busA.publish(type: "big", payload: ByteBuffer(string: "{\"text\":\"\(bigText)\"}"))
            busA.publish(type: "small", payload: ByteBuffer(string: #"{"n":3}"#))
            let received = try await withDeadline(20, "three events on B") {
                var received: [EventEnvelope] = []
                for await envelope in onB { received.append(envelope); if received.count == 3 { break } }
                return received
            }
            #expect(received.map(\.type) == ["small", "big", "small"])
            #expect(received[1].payload.readableBytes == 50_000 + 11)
            #expect(received.map(\.sequence) == received.map(\.sequence).sorted())
        }
    }

    @Test func bothDirectionsWork() async throws {
        try await withTwoBuses { busA, busB in
            let onA = busA.subscribe(types: ["from_b"])
            let onB = busB.subscribe(types: ["from_a"])
            busA.publish(type: "from_a", payload: ByteBuffer(string: #"{"v":"a"}"#))
            busB.publish(type: "from_b", payload: ByteBuffer(string: #"{"v":"b"}"#))
            let a = try await withDeadline(10, "event on A") { () -> String in
                for await envelope in onA { return String(buffer: envelope.payload) }
                return ""
            }
            let b = try await withDeadline(10, "event on B") { () -> String in
                for await envelope in onB { return String(buffer: envelope.payload) }
                return ""
            }
            #expect(a == #"{"v":"b"}"#)
            #expect(b == #"{"v":"a"}"#)
        }
    }
}
