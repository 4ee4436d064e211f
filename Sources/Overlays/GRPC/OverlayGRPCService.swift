import Foundation
import GRPCCore
import HubCore
import Realtime
import ServiceLifecycle
import Synchronization

/// `streamhub.v1.BrowserSourceService` over gRPC. Every call must carry `x-service-key` metadata
/// (checked by ``ServiceKeyInterceptor``).
public struct OverlayGRPCService: Streamhub_V1_BrowserSourceService.SimpleServiceProtocol {
    let keys: OverlayKeys
    let captions: CaptionHub

    public func validateOverlayKey(request: Streamhub_V1_ValidateOverlayKeyRequest, context: ServerContext) async throws
        -> Streamhub_V1_ValidateOverlayKeyResponse {
        let validation = try await keys.validate(request.key)
        return .with {
            $0.valid = validation != nil
            $0.communityID = validation?.communityID ?? 0
            $0.inGracePeriod = validation?.inGracePeriod ?? false
        }
    }

    public func broadcastCaption(request: Streamhub_V1_Caption, context: ServerContext) async throws -> Streamhub_V1_BroadcastCaptionResponse {
        let incoming = IncomingCaptionFields(request)
        let caption: Caption
        do {
            caption = try incoming.validated(at: Date().timeIntervalSince1970)
            let delivered = try await captions.ingest(caption)
            return .with {
                $0.stored = true
                $0.deliveredTo = Int32(clamping: delivered)
            }
        } catch let error as HubError {
            throw RPCError(code: error.status == .unprocessableContent ? .invalidArgument : .internalError, message: error.message)
        }
    }

    public func streamCaptions(request: Streamhub_V1_StreamCaptionsRequest, response: RPCWriter<Streamhub_V1_Caption>, context: ServerContext) async throws {
        guard let validation = try await keys.validate(request.key) else {
            throw RPCError(code: .unauthenticated, message: "invalid or expired overlay key")
        }
        guard validation.communityID == request.communityID else {
            throw RPCError(code: .permissionDenied, message: "this key belongs to another community")
        }
        // Subscribe before reading the history, so nothing falls between the two.
        let live = captions.bus.subscribe(types: [CaptionHub.eventType], bufferingLimit: 1024)
        let history = captions.history.recent(request.communityID)
        let newestReplayed = history.last?.timestamp ?? 0
        for caption in history { try await response.write(.init(caption)) }
        // The same rule as the overlay WebSockets: the stream ends when its key stops opening the community
        // (rotated out twice, or its grace period over). Checked every second, one indexed lookup.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var last = newestReplayed
                for await envelope in live.cancelOnGracefulShutdown() {
                    guard envelope.visibility.community == request.communityID, let caption = Caption.fromBus(envelope.payloadString),
                          caption.communityID == request.communityID else { continue }
                    if caption.timestamp < last { continue }
                    last = caption.timestamp
                    try await response.write(.init(caption))
                }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: .seconds(1))
                    guard try await keys.validate(request.key)?.communityID == request.communityID else {
                        throw RPCError(code: .unauthenticated, message: "the overlay key was rotated out; use the current key")
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// Refuses every call without a valid `x-service-key` metadata value (constant-time comparison).
public struct ServiceKeyInterceptor: ServerInterceptor {
    let keys: ServiceKeyValidator

    public init(keys: ServiceKeyValidator) {
        self.keys = keys
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let presented = request.metadata[stringValues: "x-service-key"].first { _ in true }
        guard keys.isValid(presented) else {
            throw RPCError(code: .unauthenticated, message: keys.isConfigured ? "missing or invalid x-service-key" : "no service keys are configured")
        }
        return try await next(request, context)
    }
}

extension Streamhub_V1_Caption {
    init(_ caption: Caption) {
        self.init()
        communityID = caption.communityID
        text = caption.text
        isFinal = caption.isFinal
        username = caption.username ?? ""
        original = caption.original ?? ""
        translated = caption.translated ?? ""
        detectedLang = caption.detectedLang ?? ""
        targetLang = caption.targetLang ?? ""
        confidence = caption.confidence ?? 0
        timestamp = caption.timestamp
        platform = caption.platform ?? ""
    }
}

/// A gRPC caption, validated like the REST body.
struct IncomingCaptionFields {
    let message: Streamhub_V1_Caption
    init(_ message: Streamhub_V1_Caption) { self.message = message }

    func validated(at now: Double) throws -> Caption {
        func optional(_ value: String) -> String? { value.isEmpty ? nil : value }
        let text = message.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw HubError.validation("text is required") }
        guard message.text.count <= IncomingCaption.maxText else { throw HubError.validation("text must be at most \(IncomingCaption.maxText) characters") }
        for tag in [message.detectedLang, message.targetLang] where !tag.isEmpty && !IncomingCaption.isLanguageTag(tag) {
            throw HubError.validation("language tags look like en or pt-BR")
        }
        guard (0...1).contains(message.confidence) else { throw HubError.validation("confidence must be between 0 and 1") }
        guard message.communityID > 0 else { throw HubError.validation("community_id is required") }
        return Caption(communityID: message.communityID, text: message.text, isFinal: message.isFinal, username: optional(message.username),
                       original: optional(message.original), translated: optional(message.translated), detectedLang: optional(message.detectedLang),
                       targetLang: optional(message.targetLang), confidence: message.confidence == 0 ? nil : message.confidence,
                       platform: optional(message.platform), timestamp: now)
    }
}
