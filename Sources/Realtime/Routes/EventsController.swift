import Foundation
import HubCore
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// `WS /events` (every bus event as `{"event": type, …fields}`, filterable per client) and
/// `POST /api/v1/events` (the upstream speech-to-text service publishes `transcription` and `wake_word`).
struct EventsController {
    static let topic = "events"
    /// Most events one POST may carry.
    static let maxBatch = 100

    let hub: WebSocketHub
    let bus: EventBus
    let serviceKeys: ServiceKeyValidator
    let channelAuth: ChannelAuthenticator
    let maxBodySize: Int

    func addRoutes(to router: Router<HubRequestContext>, webSockets: HubWebSocketRoutes) {
        // Who receives what is decided by each event's visibility against the client's audience (see
        // `EventVisibility`): signed-in users and API keys by role, service keys the speech events, an overlay
        // key its community's captions and transcriptions. No credentials: closed with 4401.
        webSockets.add("/events") { uri, headers in
            let filter = try Self.initialFilter(uri.queryParameters["types"].map(String.init))
            switch await channelAuth.authenticate(uri: uri, headers: headers) {
            case .refused(let code, let reason):
                return HubWebSocketRoutes.refused(code: code, reason: reason)
            case .identity(let identity):
                return HubWebSocketRoutes.Accepted(topic: Self.topic, identity: identity, filter: filter,
                                                   replayHistory: false, onText: Self.handleClientMessage)
            }
        }
        // Reached by requests that are not (valid) WebSocket upgrades: answer why.
        router.get("/events") { request, _ -> Response in
            _ = try Self.initialFilter(request.uri.queryParameters["types"].map(String.init))
            throw HubError(.upgradeRequired, code: "upgrade_required", message: "/events is a WebSocket endpoint; connect with a WebSocket client",
                           headers: [.upgrade: "websocket", .connection: "Upgrade"])
        }
        router.post("/api/v1/events") { request, context in
            try await publish(request, context: context)
        }
    }

    /// `?types=a,b` narrows a new connection to those types.
    static func initialFilter(_ raw: String?) throws -> EventFilter {
        guard let raw, !raw.isEmpty else { return .everything }
        let types = raw.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard types.count <= 100, types.allSatisfy(isValidTypeName) else {
            throw HubError.badRequest("types must be a comma-separated list of event types (letters, digits, '_')", code: "invalid_types")
        }
        var filter = EventFilter.everything
        filter.subscribe(types)
        return filter
    }

    static func isValidTypeName(_ type: String) -> Bool {
        type == "*" || (1...64).contains(type.utf8.count) && type.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    /// Handles `{"subscribe":[…]}` / `{"unsubscribe":[…]}`; anything else gets an error frame.
    @Sendable static func handleClientMessage(_ text: String, connection: HubConnection) {
        struct Command: Decodable {
            let subscribe: [String]?
            let unsubscribe: [String]?
        }
        let command: Command
        do {
            command = try Request.decodeJSON(Command.self, from: ByteBuffer(string: text))
        } catch let error as HubError {
            connection.send(ClientErrorFrame.make(code: "invalid_message", message: error.message))
            return
        } catch {
            connection.send(ClientErrorFrame.make(code: "invalid_message", message: "the message is not valid JSON"))
            return
        }
        guard command.subscribe != nil || command.unsubscribe != nil else {
            connection.send(ClientErrorFrame.make(code: "invalid_message", message: #"expected {"subscribe":[types]} or {"unsubscribe":[types]}"#))
            return
        }
        let all = (command.subscribe ?? []) + (command.unsubscribe ?? [])
        guard all.count <= 100, all.allSatisfy(isValidTypeName) else {
            connection.send(ClientErrorFrame.make(code: "invalid_message", message: "event types are 1-64 lowercase letters, digits or '_', at most 100"))
            return
        }
        let filter = connection.updateFilter { filter in
            if let types = command.subscribe { filter.subscribe(types) }
            if let types = command.unsubscribe { filter.unsubscribe(types) }
        }
        connection.send(WebSocketWire.textFrame(ByteBuffer(string: subscriptionText(filter))))
    }

    /// `{"event":"subscribed","types":[…]}` or `{"event":"subscribed","types":"*","except":[…]}`.
    static func subscriptionText(_ filter: EventFilter) -> String {
        switch filter {
        case .only(let types):
            return JSONText.object([("event", .string("subscribed")), ("types", .strings(types.sorted()))])
        case .all(let excluded):
            return JSONText.object([("event", .string("subscribed")), ("types", .string("*")), ("except", .strings(excluded.sorted()))])
        }
    }

    /// One event as sent by the upstream STT service; which fields are required depends on `event`.
    struct IncomingEvent: Decodable {
        let event: String
        let text: String?
        let isFinal: Bool?
        let sessionID: String?
        let word: String?
        let confidence: Double?
        let timestamp: Double?

        enum CodingKeys: String, CodingKey {
            case event, text, word, confidence, timestamp
            case isFinal = "is_final"
            case sessionID = "session_id"
        }
    }

    func publish(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard serviceKeys.isValid(request.headers[.init("X-Service-Key")!]) else {
            throw HubError.unauthorized(
                serviceKeys.isConfigured ? "missing or invalid X-Service-Key" : "no service keys are configured (STREAMHUB_SERVICE_KEYS)",
                code: "invalid_service_key")
        }
        let body = try await request.collectBody(limit: maxBodySize)
        let first = body.readableBytesView.first { !($0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09) }
        let incoming: [IncomingEvent] = first == UInt8(ascii: "[")
            ? try Request.decodeJSON([IncomingEvent].self, from: body)
            : [try Request.decodeJSON(IncomingEvent.self, from: body)]
        guard !incoming.isEmpty else { throw HubError.validation("the array holds no events") }
        guard incoming.count <= Self.maxBatch else { throw HubError.validation("at most \(Self.maxBatch) events per request") }
        // Validate everything before publishing anything.
        let events = try incoming.enumerated().map { index, event in try validate(event, index: incoming.count > 1 ? index : nil) }
        for event in events {
            switch event {
            case .transcription(let value): try bus.publish(value)
            case .wakeWord(let value): try bus.publish(value)
            }
        }
        context.logger.debug("published upstream events", metadata: ["count": "\(events.count)"])
        var response = Response(status: .accepted, body: .init(byteBuffer: ByteBuffer(string: JSONText.object([("published", .int(events.count))]))))
        response.headers[.contentType] = "application/json; charset=utf-8"
        return response
    }

    enum ValidEvent {
        case transcription(TranscriptionEvent)
        case wakeWord(WakeWordEvent)
    }

    func validate(_ event: IncomingEvent, index: Int?) throws -> ValidEvent {
        let prefix = index.map { "event [\($0)]: " } ?? ""
        func fail(_ message: String) -> HubError { HubError.validation(prefix + message) }
        switch event.event {
        case TranscriptionEvent.eventType:
            guard let text = event.text else { throw fail("text is required") }
            guard text.count <= 10_000 else { throw fail("text must be at most 10000 characters") }
            let session = event.sessionID ?? ""
            guard session.count <= 128 else { throw fail("session_id must be at most 128 characters") }
            return .transcription(TranscriptionEvent(text: text, isFinal: event.isFinal ?? false, sessionID: session))
        case WakeWordEvent.eventType:
            guard let word = event.word, (1...128).contains(word.count) else { throw fail("word is required (1-128 characters)") }
            guard let confidence = event.confidence, (0...1).contains(confidence) else { throw fail("confidence is required, between 0 and 1") }
            let timestamp = event.timestamp ?? Date().timeIntervalSince1970
            guard timestamp.isFinite, timestamp >= 0 else { throw fail("timestamp must be seconds since 1970") }
            return .wakeWord(WakeWordEvent(word: word, confidence: confidence, timestamp: timestamp))
        default:
            throw fail("event must be \"transcription\" or \"wake_word\"")
        }
    }
}
