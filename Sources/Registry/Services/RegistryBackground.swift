import Foundation
import HubCore
import Logging
import Realtime
import ServiceLifecycle

/// Keeps this instance in step with the others and tidy: applies their stream changes (list cache), locks
/// and logouts as they arrive on the bus; expires lapsed edit locks; prunes the change log and the denylist.
struct RegistryBackground: Service {
    let service: RegistryService
    let access: Access
    let hub: WebSocketHub
    let logger: Logger

    struct LockPayload: Decodable {
        let streamID: Int64
        let lockedBy: String?
        let expiresAtUnix: Double?
        let origin: String?
        enum CodingKeys: String, CodingKey {
            case streamID = "stream_id", lockedBy = "locked_by", expiresAtUnix = "expires_at_unix", origin
        }
    }

    struct Revoked: Decodable {
        let jti: String
        let expiresAt: Double
        enum CodingKeys: String, CodingKey { case jti, expiresAt = "expires_at" }
    }

    func run() async throws {
        let types = RegistryEventType.cable.union([RegistryEventType.tokenRevoked, RegistryEventType.accountChanged])
        let events = service.bus.subscribe(types: types)
        await withDiscardingTaskGroup { group in
            if service.database.kind == .postgres {
                // Several instances: know every stream's facts, so another instance's change keeps the lists it cannot alter.
                group.addTask {
                    do { try await service.loadFacts() } catch { logger.warning("could not load the streams for the list cache", metadata: ["error": "\(error)"]) }
                }
            }
            group.addTask {
                for await envelope in events.cancelOnGracefulShutdown() {
                    apply(envelope)
                }
            }
            group.addTask {
                var ticks = 0
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(for: .seconds(1))
                    for lock in service.locks.expire() {
                        service.publishUnlocked(lock.streamID, by: lock.holder, reason: "expired")
                    }
                    ticks += 1
                    if ticks % 60 == 0 { await maintain() }
                }
            }
        }
    }

    func apply(_ envelope: EventEnvelope) {
        let decoder = JSONDecoder()
        switch envelope.type {
        case RegistryEventType.locked where envelope.origin != service.bus.origin:
            guard let lock = try? decoder.decode(LockPayload.self, from: Data(envelope.payload.readableBytesView)),
                  let holder = lock.lockedBy, let expires = lock.expiresAtUnix else { return }
            service.locks.apply(locked: .init(streamID: lock.streamID, holder: holder, expiresAt: expires, origin: lock.origin ?? envelope.origin))
        case RegistryEventType.unlocked where envelope.origin != service.bus.origin:
            guard let lock = try? decoder.decode(LockPayload.self, from: Data(envelope.payload.readableBytesView)) else { return }
            service.locks.apply(unlocked: lock.streamID)
        case RegistryEventType.tokenRevoked:
            guard let revoked = try? decoder.decode(Revoked.self, from: Data(envelope.payload.readableBytesView)) else { return }
            if envelope.origin != service.bus.origin { access.noteRevoked(jti: revoked.jti, expiresAt: revoked.expiresAt) }
            let closed = hub.closeConnections(code: ChannelCloseCode.unauthorized, reason: "signed out: this token was revoked") {
                $0.tokenID == revoked.jti
            }
            if closed > 0 { logger.info("closed WebSockets of a revoked token", metadata: ["count": "\(closed)"]) }
        case RegistryEventType.accountChanged:
            struct Changed: Decodable { let subject: String }
            guard let changed = try? decoder.decode(Changed.self, from: Data(envelope.payload.readableBytesView)) else { return }
            if changed.subject.hasPrefix("user:"), let id = Int64(changed.subject.dropFirst(5)) { access.forget(userID: id) }
            if changed.subject.hasPrefix("api_key:") { access.forgetKeys() }
            let closed = hub.closeConnections(code: ChannelCloseCode.unauthorized, reason: "access changed (disabled, revoked or new role); sign in again") {
                $0.subject == changed.subject
            }
            if closed > 0 { logger.info("closed WebSockets of a changed account", metadata: ["subject": "\(changed.subject)", "count": "\(closed)"]) }
        case _ where RegistryEventType.changes.contains(envelope.type):
            // Changes made here were recorded with what they changed when they were made.
            if envelope.origin != service.bus.origin { service.changedElsewhere(envelope.type, payload: Data(envelope.payload.readableBytesView)) }
        default:
            break
        }
    }

    func maintain() async {
        do {
            if service.database.maintenance.isHeld { try await ChangeLog.prune(on: service.database.sql) }
            try await access.reloadDenylist()
        } catch {
            logger.warning("registry maintenance failed", metadata: ["error": "\(error)"])
        }
    }
}
