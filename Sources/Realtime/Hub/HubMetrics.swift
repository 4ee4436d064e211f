import Metrics

/// The hub's counters, as they appear in /metrics.
struct HubMetrics: Sendable {
    let factory: any MetricsFactory
    private let messagesSent: Counter
    private let messagesQueued: Counter
    private let messagesDropped: Counter
    private let slowDisconnects: Counter
    private let connectionsOpened: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        messagesSent = Counter(label: "streamhub_ws_messages_sent_total", factory: factory)
        messagesQueued = Counter(label: "streamhub_ws_messages_queued_total", factory: factory)
        messagesDropped = Counter(label: "streamhub_ws_messages_dropped_total", factory: factory)
        slowDisconnects = Counter(label: "streamhub_ws_slow_client_disconnects_total", factory: factory)
        connectionsOpened = Counter(label: "streamhub_ws_connections_opened_total", factory: factory)
    }

    /// `queued` of the `count` sent waited in the server's write queue: their client's socket was full.
    func sent(_ count: Int, queued: Int = 0, dropped: Int) {
        if count > 0 { messagesSent.increment(by: count) }
        if queued > 0 { messagesQueued.increment(by: queued) }
        if dropped > 0 { messagesDropped.increment(by: dropped) }
    }

    func slowClientDisconnected() { slowDisconnects.increment() }

    func connected(topic: String) {
        connectionsOpened.increment()
        gauge(topic).increment()
    }

    func disconnected(topic: String) { gauge(topic).decrement() }

    /// Open connections by topic kind (`captions:42` counts under `captions`), keeping label values few.
    private func gauge(_ topic: String) -> Meter {
        let kind = topic.split(separator: ":", maxSplits: 1).first.map(String.init) ?? topic
        return Meter(label: "streamhub_ws_connections", dimensions: [("topic", kind)], factory: factory)
    }
}
