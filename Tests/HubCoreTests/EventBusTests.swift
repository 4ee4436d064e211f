import HubCore
import Logging
import Metrics
import NIOCore
import Testing

@Suite struct EventBusTests {
    func makeBus() -> EventBus {
        EventBus(instanceID: "test", logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
    }

    @Test func subscribersReceiveEveryEventInPublishOrder() async throws {
        let bus = makeBus()
        let first = bus.subscribe()
        let second = bus.subscribe()
        for index in 1...500 {
            try bus.publish(TranscriptionEvent(text: "t\(index)", isFinal: index % 2 == 0, sessionID: "s"))
        }
        for stream in [first, second] {
            var received: [UInt64] = []
            for await envelope in stream {
                received.append(envelope.sequence)
                #expect(envelope.type == "transcription")
                if received.count == 500 { break }
            }
            #expect(received == Array(1...500))
        }
    }

    @Test func typedSubscriptionDecodesOnlyItsType() async throws {
        let bus = makeBus()
        let words = bus.events(of: WakeWordEvent.self)
        try bus.publish(TranscriptionEvent(text: "ignored", isFinal: true, sessionID: "s"))
        try bus.publish(WakeWordEvent(word: "jarvis", confidence: 0.9, timestamp: 1234))
        var iterator = words.makeAsyncIterator()
        let event = await iterator.next()
        #expect(event == WakeWordEvent(word: "jarvis", confidence: 0.9, timestamp: 1234))
    }

    @Test func payloadIsTheEventsFieldsAsJSON() throws {
        let bus = makeBus()
        let stream = bus.subscribe()
        _ = stream
        try bus.publish(TranscriptionEvent(text: "hello \"world\"", isFinal: true, sessionID: "abc"))
        let envelope = bus.publish(type: "custom", payload: ByteBuffer(string: #"{"a":1}"#))
        #expect(envelope.sequence == 2)
        #expect(envelope.origin.hasPrefix("test/"))
    }

    @Test func aSubscriberThatFallsBehindLosesOnlyItsOwnEvents() async throws {
        let bus = makeBus()
        let slow = bus.subscribe(bufferingLimit: 10)
        let fast = bus.subscribe()
        for index in 1...100 { try bus.publish(TranscriptionEvent(text: "\(index)", isFinal: true, sessionID: "s")) }
        var fastCount = 0
        for await _ in fast { fastCount += 1; if fastCount == 100 { break } }
        #expect(fastCount == 100)
        var slowSequences: [UInt64] = []
        var iterator = slow.makeAsyncIterator()
        for _ in 0..<10 { if let envelope = await iterator.next() { slowSequences.append(envelope.sequence) } }
        #expect(slowSequences == Array(1...10))
    }

    @Test func cancelledSubscriptionIsRemoved() async throws {
        let bus = makeBus()
        do {
            let stream = bus.subscribe()
            #expect(bus.subscriberCount == 1)
            let task = Task { for await _ in stream {} }
            task.cancel()
            await task.value
        }
        await Task.yield()
        #expect(bus.subscriberCount == 0)
    }
}

@Suite struct BoundedQueueTests {
    @Test func refusesWhenFullAndDrainsInOrder() async {
        let queue = BoundedQueue<Int>(capacity: 3)
        #expect(queue.push(1) && queue.push(2) && queue.push(3))
        #expect(!queue.push(4))
        #expect(await queue.popBatch(maxCount: 2) == [1, 2])
        queue.finish()
        #expect(!queue.push(5))
        #expect(await queue.popBatch(maxCount: 10) == [3])
        #expect(await queue.popBatch(maxCount: 10) == nil)
    }

    @Test func consumerWakesForAProducer() async {
        let queue = BoundedQueue<Int>(capacity: 10)
        async let batch = queue.popBatch(maxCount: 10)
        queue.push(42)
        #expect(await batch == [42])
    }
}

@Suite struct ConstantTimeTests {
    @Test func comparesExactly() {
        #expect(ConstantTime.equals("abcdef", "abcdef"))
        #expect(!ConstantTime.equals("abcdef", "abcdeg"))
        #expect(!ConstantTime.equals("abcdef", "abcde"))
        #expect(!ConstantTime.equals("", "a"))
        #expect(!ConstantTime.equals("a", ""))
        let validator = ServiceKeyValidator(keys: ["first-key-0123456789", "second-key-0123456789"])
        #expect(validator.isValid("second-key-0123456789"))
        #expect(!validator.isValid("second-key-012345678"))
        #expect(!validator.isValid(nil))
        #expect(!ServiceKeyValidator(keys: []).isValid(""))
    }
}
