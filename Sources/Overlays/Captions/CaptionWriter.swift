import Foundation
import HubCore
import HubStore
import Logging
import Metrics
import ServiceLifecycle
import SQLKit

/// Stores captions in batches: ingest only queues (never a database round trip per caption); this
/// service writes whatever is queued — up to ``maxBatch`` rows — in one multi-row INSERT, one transaction,
/// as soon as the previous write is done (so under load a flush happens every few milliseconds with many
/// rows, and when idle a caption is written at once). A crash loses at most what was queued and not yet
/// written; a graceful shutdown writes everything first.
public final class CaptionWriter: Service, Sendable {
    static let maxBatch = 500
    let queue: BoundedQueue<Caption>
    let database: HubDatabase
    let logger: Logger
    let dropped: Counter
    let written: Counter

    init(database: HubDatabase, capacity: Int = 100_000, logger: Logger, metrics: any MetricsFactory) {
        self.queue = BoundedQueue(capacity: capacity)
        self.database = database
        self.logger = logger
        self.dropped = Counter(label: "streamhub_captions_dropped_total", factory: metrics)
        self.written = Counter(label: "streamhub_captions_stored_total", factory: metrics)
    }

    /// Queues a caption for storage; `false` when the queue is full (the caption is still broadcast).
    @discardableResult
    func enqueue(_ caption: Caption) -> Bool {
        let queued = queue.push(caption)
        if !queued { dropped.increment() }
        return queued
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            while let batch = await queue.popBatch(maxCount: Self.maxBatch) {
                await write(batch)
            }
        } onGracefulShutdown: {
            self.queue.finish()
        }
    }

    func write(_ batch: [Caption]) async {
        guard !batch.isEmpty else { return }
        do {
            try await database.transaction { db in
                var query: SQLQueryString = """
                    INSERT INTO caption_events (community_id, text, username, original, translated, detected_lang, target_lang,
                        confidence, is_final, platform, created_at) VALUES
                    """
                for (index, caption) in batch.enumerated() {
                    query = query + (index == 0 ? " " : ", ") + """
                        (\(bind: caption.communityID), \(bind: caption.text), \(bind: caption.username), \(bind: caption.original),
                         \(bind: caption.translated), \(bind: caption.detectedLang), \(bind: caption.targetLang), \(bind: caption.confidence),
                         \(bind: caption.isFinal), \(bind: caption.platform), \(bind: caption.timestamp))
                        """
                }
                try await db.raw(query).run()
            }
            written.increment(by: batch.count)
        } catch {
            dropped.increment(by: batch.count)
            logger.error("could not store captions", metadata: ["count": "\(batch.count)", "error": "\(error)"])
        }
    }
}
