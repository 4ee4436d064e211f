import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket
import Synchronization
import HubCore

/// A real WebSocket client for tests: connects, collects every text message in order, sends on demand,
/// and reports how the server closed the connection.
public final class WebSocketProbe: Sendable {
    private let messages = BoundedQueue<String>(capacity: 10_000_000)
    private let outgoing: AsyncStream<String>.Continuation
    private let task: Task<WebSocketCloseFrame?, any Error>

    /// Connects to `ws://127.0.0.1:port/path`.
    /// With `keepBinary`, binary messages are collected too (``nextBinary(within:)``); else they are dropped.
    public init(port: Int, path: String, maxFrameSize: Int = 1 << 20, keepBinary: Bool = false) {
        let messageSink = messages
        let (outgoing, outgoingSink) = AsyncStream<String>.makeStream()
        self.outgoing = outgoingSink
        task = Task {
            defer { messageSink.finish() }
            return try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)\(path)",
                configuration: .init(maxFrameSize: maxFrameSize, autoPing: .disabled),
                logger: Logger(label: "probe")
            ) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in outgoing {
                            if text == "\u{0}close" {
                                try await outbound.close(.normalClosure, reason: nil)
                                return
                            }
                            if text.hasPrefix("\u{0}binary:") {
                                try await outbound.write(.binary(ByteBuffer(string: String(text.dropFirst(8)))))
                                continue
                            }
                            try await outbound.write(.text(text))
                        }
                    }
                    for try await message in inbound.messages(maxSize: maxFrameSize) {
                        switch message {
                        case .text(let text): messageSink.push(text)
                        case .binary(let buffer) where keepBinary:
                            messageSink.push(Self.binaryMark + Data(buffer.readableBytesView).base64EncodedString())
                        default: break
                        }
                    }
                    group.cancelAll()
                }
            }
        }
    }

    /// The next text message, failing after `seconds`.
    public func next(within seconds: Double = 10) async throws -> String {
        return try await withDeadline(seconds, "next WebSocket message") { [self] in
            guard let value = await self.messages.popBatch(maxCount: 1)?.first else { throw TestFailure("the WebSocket closed before another message arrived") }
            return value
        }
    }

    static let binaryMark = "\u{0}binary:"

    /// The next binary message (with `keepBinary`), skipping text messages.
    public func nextBinary(within seconds: Double = 10) async throws -> Data {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let message = try await next(within: max(0.1, deadline.timeIntervalSinceNow))
            if message.hasPrefix(Self.binaryMark), let data = Data(base64Encoded: String(message.dropFirst(Self.binaryMark.count))) { return data }
        }
    }

    /// The next message decoded as a JSON object.
    public func nextJSON(within seconds: Double = 10) async throws -> [String: Any] {
        let text = try await next(within: seconds)
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(text)")
        }
        return object
    }

    public func send(_ text: String) { outgoing.yield(text) }
    public func sendBinary(_ text: String) { outgoing.yield("\u{0}binary:" + text) }

    /// Closes from the client side and waits for the connection to end.
    public func close() async {
        outgoing.yield("\u{0}close")
        outgoing.finish()
        _ = try? await withDeadline(10, "close") { [task] in try await task.value }
    }

    /// How the server closed the connection (waits for it, up to `seconds`).
    public func closeFrame(within seconds: Double = 10) async throws -> WebSocketCloseFrame? {
        try await withDeadline(seconds, "WebSocket close") { [task] in try await task.value }
    }
}
