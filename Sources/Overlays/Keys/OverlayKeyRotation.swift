import Foundation
import HubCore
import Logging
import NIOCore
import Realtime
import ServiceLifecycle

/// Closes overlay WebSockets (`/ws/captions` and `/events?key=`) whose key a rotation retired, on every
/// instance: a key rotated out twice at once, the previous key when its grace period ends. Each instance
/// also forgets the key answers it kept (``OverlayKeyCache``), so no retired key opens a new socket.
struct OverlayKeyRotation: Service {
    static let event = "internal.overlay_key_rotated"

    let bus: EventBus
    let hub: WebSocketHub
    let keys: OverlayKeys
    let logger: Logger

    struct Rotated: Codable {
        let communityID: Int64
        let currentHash: String
        let previousHash: String
        let previousValidUntil: Double
        enum CodingKeys: String, CodingKey {
            case communityID = "community_id", currentHash = "current_hash", previousHash = "previous_hash", previousValidUntil = "previous_valid_until"
        }
    }

    /// Tells every instance (this one too) about a rotation. Key hashes only, never keys; no client sees it.
    /// Answers the event published.
    @discardableResult
    static func announce(_ rotation: OverlayKeys.Rotation, on bus: EventBus) -> EventEnvelope? {
        let rotated = Rotated(communityID: rotation.community, currentHash: rotation.currentHash, previousHash: rotation.previousHash,
                              previousValidUntil: rotation.previousValidUntil)
        guard let data = try? JSONEncoder().encode(rotated) else { return nil }
        return bus.publish(type: event, payload: ByteBuffer(bytes: data), visibility: .nobody)
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await envelope in bus.subscribe(types: [Self.event]).cancelOnGracefulShutdown() {
                guard let rotated = handle(envelope) else { continue }
                // The one just retired works until its grace period ends.
                group.addTask {
                    let delay = max(0, rotated.previousValidUntil - Date().timeIntervalSince1970)
                    try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
                    close("overlay:\(rotated.communityID)", reason: "overlay key's grace period ended; use the current overlay URL") {
                        $0 == rotated.previousHash
                    }
                }
            }
            // Shutting down: stop waiting for grace periods (the sockets close with the server anyway).
            group.cancelAll()
        }
    }

    /// What a rotation event changes at once: kept key answers are forgotten, and sockets opened with keys
    /// older than the one just retired are closed. Answers the rotation (`nil` for a malformed event).
    func handle(_ envelope: EventEnvelope) -> Rotated? {
        guard let rotated = try? JSONDecoder().decode(Rotated.self, from: Data(envelope.payload.readableBytesView)) else { return nil }
        keys.forgetValidations()
        close("overlay:\(rotated.communityID)", reason: "overlay key rotated out; use the current overlay URL") {
            $0 != rotated.currentHash && $0 != rotated.previousHash
        }
        return rotated
    }

    private func close(_ subject: String, reason: String, keys matches: (String?) -> Bool) {
        let closed = hub.closeConnections(code: ChannelCloseCode.unauthorized, reason: reason) { $0.subject == subject && matches($0.tokenID) }
        if closed > 0 { logger.info("closed overlay sockets of a retired key", metadata: ["subject": "\(subject)", "count": "\(closed)"]) }
    }
}
