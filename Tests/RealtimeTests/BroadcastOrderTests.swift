import HubCore
import NIOCore
import NIOEmbedded
@testable import Realtime
import Testing

/// A broadcast writes a loop's clients in the order they connected (connection id), whatever order the
/// registry keeps them in: the sockets' memory, on the server and on a client machine holding many of
/// them, is then walked in the order it was allocated.
@Suite struct BroadcastOrderTests {
    @Test func aBroadcastWritesClientsInTheOrderTheyConnected() {
        let loop = EmbeddedEventLoop()
        let key = WebSocketHub.BucketKey(loop: ObjectIdentifier(loop), audience: .service)
        var topic = WebSocketHub.Topic()
        var bucket = WebSocketHub.LoopBucket(loop: loop)
        for id in (1...500).shuffled() {
            bucket.connections[UInt64(id)] = HubConnection(id: UInt64(id), topic: "t", channel: EmbeddedChannel(loop: loop), filter: .everything)
        }
        topic.buckets[key] = bucket
        topic.count = 500

        func written() -> [UInt64] {
            var order: [UInt64] = []
            topic.prepareBroadcast(ByteBuffer(string: "x"), at: .now, visibility: EventVisibility(service: true)) { _, connections in
                order += connections.map(\.id)
            }
            return order
        }
        #expect(written() == (1...500).map(UInt64.init))
        // After a client leaves and another connects, still in connection order.
        topic.buckets[key]?.connections.removeValue(forKey: 250)
        topic.buckets[key]?.connections[501] = HubConnection(id: 501, topic: "t", channel: EmbeddedChannel(loop: loop), filter: .everything)
        #expect(written() == (1...501).filter { $0 != 250 }.map(UInt64.init))
    }
}
