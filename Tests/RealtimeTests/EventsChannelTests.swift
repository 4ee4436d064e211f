import Foundation
import HubCore
import HubTestSupport
import HTTPTypes
import HummingbirdTesting
import NIOCore
import StreamHub
import Testing

/// Posts events the way the upstream speech-to-text service does.
func postEvents(_ client: any TestClientProtocol, _ json: String) async throws -> TestResponse {
    try await client.execute(uri: "/api/v1/events", method: .post,
                             headers: [HTTPField.Name("X-Service-Key")!: testServiceKey, .contentType: "application/json"],
                             body: ByteBuffer(string: json))
}

/// Opens `/events` and waits until the hub has registered the connection (the ack of a subscribe).
/// Signs in with the service key (`?key=`) unless `query` brings its own credential.
func connectEvents(_ port: Int, subscribe: String = #"["*"]"#, query: String = "") async throws -> WebSocketProbe {
    let credential = query.contains("key=") || query.contains("token=") ? "" : (query.isEmpty ? "?" : "&") + "key=\(testServiceKey)"
    let probe = WebSocketProbe(port: port, path: "/events\(query)\(credential)")
    probe.send(#"{"subscribe":\#(subscribe)}"#)
    let ack = try await probe.nextJSON()
    guard ack["event"] as? String == "subscribed" else { throw TestFailure("expected a subscribed ack, got \(ack)") }
    return probe
}

@Suite struct EventsChannelTests {
    @Test func publishedTranscriptionReachesEventsClients() async throws {
        try await withTestApplication { _, client in
            let probe = try await connectEvents(client.port!)
            let response = try await postEvents(client, #"{"event":"transcription","text":"hello \"world\" ünï","is_final":true,"session_id":"s-1"}"#)
            #expect(response.status == .accepted)
            let frame = try await probe.next()
            #expect(frame.hasPrefix(#"{"event":"transcription","#))
            let object = try JSONSerialization.jsonObject(with: Data(frame.utf8)) as? [String: Any]
            #expect(object?["text"] as? String == "hello \"world\" ünï")
            #expect(object?["is_final"] as? Bool == true)
            #expect(object?["session_id"] as? String == "s-1")
            await probe.close()
        }
    }

    @Test func wakeWordCarriesItsFields() async throws {
        try await withTestApplication { _, client in
            let probe = try await connectEvents(client.port!)
            _ = try await postEvents(client, #"{"event":"wake_word","word":"jarvis","confidence":0.93,"timestamp":1700000000.5}"#)
            let object = try await probe.nextJSON()
            #expect(object["event"] as? String == "wake_word")
            #expect(object["word"] as? String == "jarvis")
            #expect(object["confidence"] as? Double == 0.93)
            #expect(object["timestamp"] as? Double == 1700000000.5)
            await probe.close()
        }
    }

    @Test func subscribeNarrowsAndUnsubscribeRemoves() async throws {
        try await withTestApplication { _, client in
            let probe = try await connectEvents(client.port!, subscribe: #"["wake_word"]"#)
            _ = try await postEvents(client, #"[{"event":"transcription","text":"skip me"},{"event":"wake_word","word":"one","confidence":0.5}]"#)
            let received1 = try await probe.nextJSON()
            #expect(received1["word"] as? String == "one")

            probe.send(#"{"subscribe":["transcription"],"unsubscribe":["wake_word"]}"#)
            let ack = try await probe.nextJSON()
            #expect(ack["types"] as? [String] == ["transcription"])
            _ = try await postEvents(client, #"[{"event":"wake_word","word":"two","confidence":0.5},{"event":"transcription","text":"keep me"}]"#)
            let received2 = try await probe.nextJSON()
            #expect(received2["text"] as? String == "keep me")
            await probe.close()
        }
    }

    @Test func typesQueryParameterFiltersFromTheStart() async throws {
        try await withTestApplication { _, client in
            let probe = try await connectEvents(client.port!, subscribe: "[]", query: "?types=wake_word")
            _ = try await postEvents(client, #"[{"event":"transcription","text":"no"},{"event":"wake_word","word":"yes","confidence":1}]"#)
            let received3 = try await probe.nextJSON()
            #expect(received3["word"] as? String == "yes")
            await probe.close()
            let refused = try await client.execute(uri: "/events?types=bad%20type", method: .get)
            #expect(refused.status == .badRequest)
        }
    }

    @Test(arguments: [
        ("not json", "invalid_message"),
        (#"{"subscribe":"transcription"}"#, "invalid_message"),
        (#"{"subscribe":[1,2]}"#, "invalid_message"),
        (#"{"hello":"world"}"#, "invalid_message"),
        (#"{"subscribe":["Bad Type"]}"#, "invalid_message"),
        ("[]", "invalid_message"),
    ])
    func malformedClientFrameGetsAnErrorFrameAndStaysOpen(message: String, code: String) async throws {
        try await withTestApplication { _, client in
            let probe = try await connectEvents(client.port!)
            probe.send(message)
            let error = try await probe.nextJSON()
            #expect(error["event"] as? String == "error")
            #expect(error["code"] as? String == code)
            #expect((error["message"] as? String)?.isEmpty == false)
            // Still connected and still served.
            _ = try await postEvents(client, #"{"event":"transcription","text":"after"}"#)
            let received4 = try await probe.nextJSON()
            #expect(received4["text"] as? String == "after")
            await probe.close()
        }
    }

    @Test func binaryFrameGetsAnErrorFrame() async throws {
        try await withTestApplication { _, client in
            let probe = try await connectEvents(client.port!)
            probe.sendBinary("\u{1}\u{2}")
            let error = try await probe.nextJSON()
            #expect(error["code"] as? String == "unsupported_message")
            await probe.close()
        }
    }

    @Test func oversizedFrameClosesTheConnectionWith1009() async throws {
        try await withTestApplication { _, client in
            let probe = try await connectEvents(client.port!)
            probe.send(#"{"subscribe":[""# + String(repeating: "\"a\",", count: 20_000) + #""a"]}"#)
            let close = try await probe.closeFrame()
            #expect(close?.closeCode == .messageTooLarge)
        }
    }

    @Test func everyClientReceivesEveryEventInOrder() async throws {
        try await withTestApplication { _, client in
            var probes: [WebSocketProbe] = []
            for _ in 0..<5 { probes.append(try await connectEvents(client.port!)) }
            for batch in 0..<4 {
                let events = (0..<100).map { #"{"event":"transcription","text":"\#(batch * 100 + $0)"}"# }
                let response = try await postEvents(client, "[" + events.joined(separator: ",") + "]")
                #expect(response.status == .accepted)
            }
            for probe in probes {
                var texts: [String] = []
                for _ in 0..<400 { texts.append(try await probe.nextJSON()["text"] as? String ?? "?") }
                #expect(texts == (0..<400).map(String.init))
                await probe.close()
            }
        }
    }

    @Test func slowClientIsDroppedWhileFastClientsGetEverything() async throws {
        try await withTestApplication(configure: { $0.webSocketMaxQueuedBytes = 16 * 1024 }) { app, client in
            let port = client.port!
            let fast = try await connectEvents(port)
            let slow = try await SlowSocketClient.open(port: port, path: "/events?key=\(testServiceKey)")
            defer { slow.close() }
            try await eventually("slow client registered") { app.realtime.hub.connectionCount(topic: "events") == 2 }

            let padding = String(repeating: "x", count: 2000)
            let total = 3000
            // Batches of 100 (200 KB), each read whole by the fast client before the next is sent: a fast
            // client is one that keeps up, also on a loaded machine; the slow one never reads.
            batches: for batch in 0..<(total / 100) {
                let events = (0..<100).map { #"{"event":"transcription","text":"\#(batch * 100 + $0) \#(padding)"}"# }
                let response = try await postEvents(client, "[" + events.joined(separator: ",") + "]")
                #expect(response.status == .accepted)
                for index in (batch * 100)..<(batch * 100 + 100) {
                    let text = try await fast.nextJSON()["text"] as? String ?? ""
                    #expect(text.hasPrefix("\(index) "), "fast client missed or reordered event \(index)")
                    if !text.hasPrefix("\(index) ") { break batches }
                }
            }
            try await eventually("slow client removed") { app.realtime.hub.connectionCount(topic: "events") == 1 }
            try await eventually("slow client's socket closed") { slow.serverHasClosed() }
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(String(buffer: metrics.body).contains("streamhub_ws_slow_client_disconnects_total 1"))
            await fast.close()
        }
    }

    /// Frames go straight to a client's socket while it keeps up; what its socket cannot take waits in the
    /// server's queue, in order, and once the client has caught up, frames go straight to it again.
    @Test func clientThatFallsBehindCatchesUpWithEveryFrameInOrder() async throws {
        // A queue bound far above what the sockets hold: the client is held back, not dropped.
        try await withTestApplication(configure: { $0.webSocketMaxQueuedBytes = 32 << 20 }) { app, client in
            let port = client.port!
            let lagging = try await SlowSocketClient.open(port: port, path: "/events?key=\(testServiceKey)")
            defer { lagging.close() }
            try await eventually("client registered") { app.realtime.hub.connectionCount(topic: "events") == 1 }
            @Sendable func counter(_ name: String) async throws -> Int {
                let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
                let line = metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }
                return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            }

            // 800 events of 9 KB while the client reads nothing: twice what the kernel's socket buffers
            // hold at most (4 MiB on the sending side here).
            let padding = String(repeating: "x", count: 9_000)
            let total = 800
            for batch in 0..<(total / 20) {
                let events = (0..<20).map { #"{"event":"transcription","text":"\#(batch * 20 + $0) \#(padding)"}"# }
                #expect(try await postEvents(client, "[" + events.joined(separator: ",") + "]").status == .accepted)
            }
            try await eventually("every frame written or queued") { try await counter("streamhub_ws_messages_sent_total") >= total }
            // The number each event's text starts with, in the order the client read them.
            func numbers(_ frames: [String]) -> [String] {
                frames.map { frame in
                    let json = try? JSONSerialization.jsonObject(with: Data(frame.utf8)) as? [String: Any]
                    return (json?["text"] as? String)?.split(separator: " ").first.map(String.init) ?? "?"
                }
            }
            let texts = try await onOwnThread { try lagging.readTextMessages(total) }
            #expect(numbers(texts) == (0..<total).map(String.init), "frames lost, repeated or reordered")
            let queued = try await counter("streamhub_ws_messages_queued_total")
            #expect(queued > 0, "the client never fell behind: frames did not wait in the queue")
            #expect(queued < total, "no frame went straight to the socket")

            // Caught up: small frames go straight to the socket again, none waits in the queue.
            let events = (total..<(total + 20)).map { #"{"event":"transcription","text":"\#($0)"}"# }
            #expect(try await postEvents(client, "[" + events.joined(separator: ",") + "]").status == .accepted)
            let more = try await onOwnThread { try lagging.readTextMessages(20) }
            #expect(numbers(more) == (total..<(total + 20)).map(String.init))
            #expect(try await counter("streamhub_ws_messages_queued_total") == queued, "frames waited in the queue after the client caught up")
            #expect(try await counter("streamhub_ws_messages_sent_total") == total + 20)
        }
    }
}
