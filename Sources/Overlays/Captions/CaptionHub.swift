import Foundation
import HubCore
import HubStore
import Hummingbird
import Logging
import NIOCore
import Realtime
import ServiceLifecycle
import SQLKit
import Synchronization

/// Which communities exist, kept in memory so caption ingest never asks the database per caption. A
/// miss (a community created on another instance a moment ago) is looked up once and remembered; an
/// unknown id is remembered as unknown for a few seconds.
final class CommunityDirectory: Sendable {
    let database: HubDatabase
    private let known = Mutex<Set<Int64>>([])
    private let unknown = Mutex<[Int64: Double]>([:])

    init(database: HubDatabase) {
        self.database = database
    }

    func load() async throws {
        let ids = try await database.sql.raw("SELECT id FROM communities").all().map { try $0.decode(column: "id", as: Int64.self) }
        known.withLock { $0.formUnion(ids) }
    }

    func add(_ id: Int64) {
        _ = known.withLock { $0.insert(id) }
        _ = unknown.withLock { $0.removeValue(forKey: id) }
    }

    func remove(_ id: Int64) {
        _ = known.withLock { $0.remove(id) }
    }

    func exists(_ id: Int64) async throws -> Bool {
        if known.withLock({ $0.contains(id) }) { return true }
        let now = Date().timeIntervalSince1970
        if let since = unknown.withLock({ $0[id] }), now - since < 5 { return false }
        let found = try await database.sql.raw("SELECT id FROM communities WHERE id = \(bind: id)").first() != nil
        if found { add(id) } else { unknown.withLock { if $0.count > 10_000 { $0.removeAll() }; $0[id] = now } }
        return found
    }
}

/// Captions from ingest to screens: validated, queued for storage, published on the bus (`caption`, and
/// `transcription` for `/events`), and — on every instance, from the bus — broadcast to the community's
/// overlay WebSockets, each caption encoded once. The hub keeps each community's last 10 captions of
/// the last 5 minutes in memory and replays them to a new connection.
public struct CaptionHub: Sendable {
    public static let eventType = "caption"
    static let topicPrefix = "captions:"
    static let historyCount = 10
    static let historyAge: Double = 300

    let bus: EventBus
    let hub: WebSocketHub
    let writer: CaptionWriter
    let communities: CommunityDirectory
    let history: CaptionHistory

    static func topic(_ community: Int64) -> String { topicPrefix + String(community) }

    /// Ingests one caption: the caller validated it; its community must exist. Answers how many
    /// connections on this instance it was handed to.
    /// `transcription: false` leaves the `/events` side to the caller (a transcriber publishes its own, richer one).
    @discardableResult
    func ingest(_ caption: Caption, transcription: Bool = true) async throws -> Int {
        guard try await communities.exists(caption.communityID) else {
            throw HubError.validation("community_id \(caption.communityID) is not a known community")
        }
        writer.enqueue(caption)
        // The caption's visibility names its community: the forwarder routes by it without reading the payload.
        bus.publish(type: Self.eventType, payload: ByteBuffer(string: caption.busPayload), visibility: .community(caption.communityID))
        if transcription {
            try bus.publish(TranscriptionEvent(text: caption.text, isFinal: caption.isFinal, sessionID: "community-\(caption.communityID)",
                                               communityID: caption.communityID))
        }
        return hub.connectionCount(topic: Self.topic(caption.communityID))
    }
}

/// Bus `caption` events → the community's WebSocket topic. The bus payload is the overlay frame's JSON, so a
/// caption is framed once, from the publisher's bytes: no decoding, no re-encoding, and the community comes
/// from the event's visibility.
struct CaptionForwarder: Service {
    let bus: EventBus
    let hub: WebSocketHub
    let history: CaptionHistory

    func run() async throws {
        for await envelope in bus.subscribe(types: [CaptionHub.eventType]).cancelOnGracefulShutdown() {
            guard let community = envelope.visibility.community else { continue }
            history.note(envelope.payload, community: community)
            hub.broadcast(text: envelope.payload, to: CaptionHub.topic(community), visibility: envelope.visibility)
        }
    }
}

/// Deletes stored captions older than the retention.
struct CaptionCleaner: Service {
    let database: HubDatabase
    let retention: Double
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // One instance sweeps the shared table (the maintenance lease holder).
                if database.maintenance.isHeld {
                    try await database.sql.raw("DELETE FROM caption_events WHERE created_at < \(bind: Date().timeIntervalSince1970 - retention)").run()
                }
            } catch {
                logger.warning("caption cleanup failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(30)) }
        }
    }
}

/// Each community's recent captions (the last 10 of the last 5 minutes), for gRPC streams; WebSockets
/// get theirs from the hub's history ring. Kept as the bus bytes and decoded only when a stream asks.
final class CaptionHistory: Sendable {
    private let recentByCommunity = Mutex<[Int64: [ByteBuffer]]>([:])

    func note(_ payload: ByteBuffer, community: Int64) {
        recentByCommunity.withLock { all in
            var list = all[community] ?? []
            list.append(payload)
            if list.count > CaptionHub.historyCount { list.removeFirst(list.count - CaptionHub.historyCount) }
            all[community] = list
        }
    }

    func recent(_ community: Int64, now: Double = Date().timeIntervalSince1970) -> [Caption] {
        recentByCommunity.withLock { $0[community] ?? [] }.compactMap { Caption.fromBus(String(buffer: $0)) }
            .filter { now - $0.timestamp <= CaptionHub.historyAge }
    }
}
