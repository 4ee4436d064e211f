import Foundation
import HubCore
import Hummingbird
import Logging
import NIOCore
import Realtime
import Synchronization

/// `WS /api/v1/cable`: live registry changes for signed-in clients (the ActionCable equivalent).
///
/// - Authenticate with `?token=<JWT or API key>` or a first message `{"auth":"<JWT or API key>"}` (within
///   10 s, else the connection closes with 4401).
/// - `?since=<event id>` replays the changes after that id from the change log, then goes live; a client
///   too far behind gets `{"event":"refetch"}` and should reload the list. Every change frame carries
///   `event_id`; ids only grow, so a client skips an id it has already seen.
/// - Edit locks: `{"lock":<stream id>}` takes or renews a lock (renew within 30 s), `{"unlock":<id>}`
///   releases it; everyone sees `stream_locked` / `stream_unlocked`.
struct CableController {
    static let topic = "cable"
    static let authTimeout: TimeAmount = .seconds(10)

    let service: RegistryService
    let access: Access
    let hub: WebSocketHub
    let logger: Logger

    final class Session: Sendable {
        let since: Int64?
        let principal = Mutex<Principal?>(nil)
        init(since: Int64?) { self.since = since }
    }

    private let sessions = Sessions()

    final class Sessions: Sendable {
        private let byConnection = Mutex<[UInt64: Session]>([:])
        func add(_ id: UInt64, _ session: Session) { byConnection.withLock { $0[id] = session } }
        func get(_ id: UInt64) -> Session? { byConnection.withLock { $0[id] } }
        func remove(_ id: UInt64) { _ = byConnection.withLock { $0.removeValue(forKey: id) } }
    }

    func addRoutes(to router: Router<HubRequestContext>, webSockets: HubWebSocketRoutes) {
        webSockets.add("/api/v1/cable") { uri, _ in
            let since = try Self.since(uri.queryParameters["since"].map(String.init))
            let session = Session(since: since)
            var identity = ChannelIdentity.anonymous
            if let token = uri.queryParameters["token"] {
                // A bad token refuses the upgrade; the HTTP route below explains why.
                let resolved = try await access.channelSession(for: String(token))
                identity = resolved.identity
                session.principal.withLock { $0 = resolved.principal }
            }
            return HubWebSocketRoutes.Accepted(
                topic: Self.topic, identity: identity, filter: .only([]), replayHistory: false,
                onText: { text, connection in handle(text, connection: connection) },
                afterAttach: { connection in
                    sessions.add(connection.id, session)
                    if let principal = session.principal.withLock({ $0 }) {
                        start(connection, session: session, principal: principal)
                    } else {
                        connection.send(Self.frame(JSONText.object([("event", .string("auth_required")), ("message", .string(#"send {"auth":"<token or API key>"} within 10 s"#))])))
                        connection.eventLoop.scheduleTask(in: Self.authTimeout) {
                            if session.principal.withLock({ $0 }) == nil { connection.close(code: 4401, reason: "authentication timed out") }
                        }
                    }
                },
                onClose: { connection in sessions.remove(connection.id) })
        }
        // Reached when the request is not a valid upgrade, or its token was refused.
        router.get("/api/v1/cable") { request, _ -> Response in
            _ = try Self.since(request.uri.queryParameters["since"].map(String.init))
            if let token = request.uri.queryParameters["token"] { _ = try await access.principal(for: String(token)) }
            throw HubError(.upgradeRequired, code: "upgrade_required", message: "/api/v1/cable is a WebSocket endpoint; connect with a WebSocket client",
                           headers: [.upgrade: "websocket", .connection: "Upgrade"])
        }
    }

    static func since(_ raw: String?) throws -> Int64? {
        guard let raw, !raw.isEmpty else { return nil }
        guard let value = Int64(raw), value >= 0 else { throw HubError.validation("since must be an event id (a non-negative integer)") }
        return value
    }

    static func frame(_ text: String) -> ByteBuffer {
        WebSocketWire.textFrame(ByteBuffer(string: text))
    }

    /// Authenticated: greet, replay what was missed, then go live and replay again whatever arrived while
    /// the first replay ran (duplicates are possible in that instant; ids tell them apart).
    func start(_ connection: HubConnection, session: Session, principal: Principal) {
        let service = self.service
        let logger = self.logger
        Task {
            connection.send(Self.frame(JSONText.object([
                ("event", .string("welcome")), ("role", .string(principal.role)), ("name", .string(principal.name)),
            ])))
            for lock in service.locks.all() {
                connection.send(EventsForwarder.frame(type: RegistryEventType.locked, payload: ByteBuffer(string: lock.lockedPayload)))
            }
            var last = session.since
            do {
                if let since = last { last = try await replay(after: since, to: connection) }
                _ = connection.updateFilter { $0 = .only(RegistryEventType.cable) }
                if let since = last { _ = try await replay(after: since, to: connection) }
            } catch {
                logger.warning("cable replay failed", metadata: ["error": "\(error)"])
                _ = connection.updateFilter { $0 = .only(RegistryEventType.cable) }
                connection.send(Self.frame(#"{"event":"refetch","reason":"replay_failed"}"#))
            }
        }
    }

    /// Sends the changes after `since`; answers the last id sent (or `since`), `nil` after a refetch.
    func replay(after since: Int64, to connection: HubConnection) async throws -> Int64? {
        switch try await ChangeLog.since(since, on: service.database.sql) {
        case .tooFarBehind:
            connection.send(Self.frame(#"{"event":"refetch","reason":"too_far_behind"}"#))
            return nil
        case .events(let events):
            for event in events {
                connection.send(EventsForwarder.frame(type: event.type, payload: ByteBuffer(string: event.payload)))
            }
            return events.last?.id ?? since
        }
    }

    struct Command: Decodable {
        let auth: String?
        let lock: Int64?
        let unlock: Int64?
    }

    func handle(_ text: String, connection: HubConnection) {
        guard let session = sessions.get(connection.id) else { return }
        let command: Command
        do {
            command = try Request.decodeJSON(Command.self, from: ByteBuffer(string: text))
        } catch let error as HubError {
            return connection.send(ClientErrorFrame.make(code: "invalid_message", message: error.message))
        } catch {
            return connection.send(ClientErrorFrame.make(code: "invalid_message", message: "the message is not valid JSON"))
        }
        let principal = session.principal.withLock { $0 }
        if let credential = command.auth {
            guard principal == nil else {
                return connection.send(ClientErrorFrame.make(code: "already_authenticated", message: "this connection is already signed in"))
            }
            let access = self.access
            Task {
                do {
                    let (principal, identity) = try await access.channelSession(for: credential)
                    let first = session.principal.withLock { current -> Bool in
                        guard current == nil else { return false }
                        current = principal
                        return true
                    }
                    if first {
                        hub.setIdentity(identity, of: connection)
                        start(connection, session: session, principal: principal)
                    }
                } catch {
                    connection.close(code: 4401, reason: "invalid token or API key")
                }
            }
            return
        }
        guard let principal else {
            return connection.send(ClientErrorFrame.make(code: "unauthenticated", message: #"send {"auth":"<token or API key>"} first"#))
        }
        guard let id = command.lock ?? command.unlock else {
            return connection.send(ClientErrorFrame.make(code: "invalid_message", message: #"expected {"auth":…}, {"lock":<stream id>} or {"unlock":<stream id>}"#))
        }
        guard let role = Role(rawValue: principal.role), role >= .editor else {
            return connection.send(ClientErrorFrame.make(code: "forbidden", message: "locking streams needs the editor role"))
        }
        let service = self.service
        Task {
            do {
                if command.lock != nil {
                    _ = try await service.lock(id, by: principal)
                } else {
                    try service.unlock(id, by: principal)
                }
            } catch let error as HubError {
                connection.send(ClientErrorFrame.make(code: error.code, message: error.message))
            } catch {
                connection.send(ClientErrorFrame.make(code: "internal_error", message: "the lock could not be changed"))
            }
        }
    }
}
