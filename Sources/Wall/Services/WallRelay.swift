import Foundation
import HubCore
import Logging
import NIOCore
import Realtime
import ServiceLifecycle

/// Gives a wall's display links the live state of what their wall shows. A display may read its wall and
/// the streams and recordings in it (`GET /api/v1/walls/{name}/sources`); this relay sends it the events of
/// exactly those — `stream_updated`, `stream_status`, `stream_deleted`, `recording_state` — on `/events`.
///
/// Every instance relays to its own clients only (straight into the hub, not over the bus): the events come
/// from the bus, so changes made on any instance reach displays on every instance once.
struct WallRelay: Service {
    let store: WallStore
    let bus: EventBus
    let hub: WebSocketHub
    let logger: Logger

    static let relayed: Set<String> = ["stream_updated", "stream_status", "stream_deleted", "recording_state"]

    /// Which walls show each stream and recording (directly or as a fallback).
    struct Index {
        var streams: [Int64: Set<String>] = [:]
        var recordings: [String: Set<String>] = [:]

        mutating func set(wall: String, streams: Set<Int64>, recordings: Set<String>) {
            Self.replace(wall, in: &self.streams, with: streams)
            Self.replace(wall, in: &self.recordings, with: recordings)
        }

        private static func replace<ID: Hashable>(_ wall: String, in map: inout [ID: Set<String>], with ids: Set<ID>) {
            for (id, walls) in map where walls.contains(wall) && !ids.contains(id) {
                map[id] = walls.count == 1 ? nil : walls.subtracting([wall])
            }
            for id in ids { map[id, default: []].insert(wall) }
        }
    }

    func run() async throws {
        // Subscribe before loading, so a change made meanwhile is not missed.
        let events = bus.subscribe(types: Self.relayed.union([WallStore.changedEvent]))
        var index = Index()
        do {
            for wall in try await store.list() { index.set(wall: wall.name, streams: wall.streamIDs, recordings: wall.recordingIDs) }
        } catch {
            logger.error("wall relay could not load the walls; displays get stream changes once their wall changes", metadata: ["error": "\(error)"])
        }
        for await envelope in events.cancelOnGracefulShutdown() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(envelope.payload.readableBytesView)) as? [String: Any] else { continue }
            if envelope.type == WallStore.changedEvent {
                guard let name = object["wall"] as? String else { continue }
                let cells = ((object["state"] as? [String: Any])?["cells"] as? [[String: Any]]) ?? []
                var streams = Set<Int64>(), recordings = Set<String>()
                for cell in cells {
                    for key in ["stream_id", "fallback_stream_id"] { if let id = (cell[key] as? NSNumber)?.int64Value { streams.insert(id) } }
                    if let id = cell["recording_id"] as? String { recordings.insert(id) }
                }
                index.set(wall: name, streams: streams, recordings: recordings)
                continue
            }
            let walls: Set<String>
            if envelope.type == "recording_state" {
                let recording = object["recording"] as? [String: Any]
                guard let id = recording?["id"] as? String, let found = index.recordings[id] else { continue }
                walls = found
            } else {
                guard let id = ((object["stream"] as? [String: Any])?["id"] as? NSNumber)?.int64Value, let found = index.streams[id] else { continue }
                walls = found
            }
            var visibility = EventVisibility.nobody
            for wall in walls { visibility = visibility.adding(wall: wall) }
            hub.broadcast(frame: EventsForwarder.frame(for: envelope), to: RealtimeModule.eventsTopic, visibility: visibility, eventType: envelope.type)
        }
    }
}
