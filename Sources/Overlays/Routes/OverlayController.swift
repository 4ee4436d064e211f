import Foundation
import HTTPTypes
import HubCore
import HubStore
import Hummingbird
import Logging
import NIOCore
import Realtime
import Registry
import SQLKit
import Synchronization

/// What OBS loads and what the speech-to-text side posts: `GET /overlay/{key}`,
/// `GET /overlay/captions/{key}`, `WS /ws/captions/{community_id}?key=`, `POST /api/v1/internal/captions`.
struct OverlayController {
    let keys: OverlayKeys
    let captions: CaptionHub
    let pages: PageCache
    let accessLog: AccessLog
    let serviceKeys: ServiceKeyValidator
    let logger: Logger

    func addRoutes(to router: Router<HubRequestContext>, webSockets: HubWebSocketRoutes) {
        router.get("/overlay/captions/:key") { request, context in try await page(request, context: context, captionsOnly: true) }
        router.get("/overlay/:key") { request, context in try await page(request, context: context, captionsOnly: false) }
        router.post("/api/v1/internal/captions") { request, context in try await ingest(request, context: context) }

        webSockets.add(prefix: "/ws/captions/") { uri, _ in
            let rest = String(uri.path.dropFirst("/ws/captions/".count))
            let key = uri.queryParameters["key"].map(String.init) ?? ""
            guard let community = Int64(rest), community > 0 else {
                return HubWebSocketRoutes.refused(code: ChannelCloseCode.notFound, reason: "no such community")
            }
            guard !key.isEmpty else { return HubWebSocketRoutes.refused(code: ChannelCloseCode.unauthorized, reason: "missing overlay key") }
            guard let valid = try await keys.validate(key) else {
                return HubWebSocketRoutes.refused(code: ChannelCloseCode.unauthorized, reason: "invalid or expired overlay key")
            }
            guard valid.communityID == community else {
                return HubWebSocketRoutes.refused(code: ChannelCloseCode.forbidden, reason: "this key belongs to another community")
            }
            return HubWebSocketRoutes.Accepted(
                topic: CaptionHub.topic(community), identity: valid.channelIdentity, replayHistory: true,
                onText: { text, connection in
                    if text == "ping" { connection.send(WebSocketWire.textFrame(ByteBuffer(string: "pong"))) }
                })
        }
        router.get("/ws/captions/:community") { _, _ -> Response in
            throw HubError(.upgradeRequired, code: "upgrade_required", message: "/ws/captions/{community_id} is a WebSocket endpoint",
                           headers: [.upgrade: "websocket", .connection: "Upgrade"])
        }
    }

    func page(_ request: Request, context: HubRequestContext, captionsOnly: Bool) async throws -> Response {
        let key = context.parameters.get("key") ?? ""
        let path = captionsOnly ? "/overlay/captions" : "/overlay"
        let userAgent = request.headers[.userAgent]
        guard let valid = try await keys.validate(key) else {
            await accessLog.record(community: nil, key: key, ip: context.clientAddress(request), userAgent: userAgent, path: path, served: 0, result: "invalid_key")
            throw HubError.unauthorized("this overlay key is invalid or has expired; copy the current overlay URL", code: "invalid_overlay_key")
        }
        let rendered = try await pages.rendered(valid.communityID, captionsOnly: captionsOnly)
        await accessLog.record(community: valid.communityID, key: key, ip: context.clientAddress(request), userAgent: userAgent, path: path,
                               served: rendered.sourcesServed, result: valid.inGracePeriod ? "ok_grace_period" : "ok")
        return Response(status: .ok, headers: [
            .contentType: "text/html; charset=utf-8",
            HTTPField.Name("X-Frame-Options")!: "ALLOWALL",
            HTTPField.Name("Content-Security-Policy")!: rendered.csp,
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
            .cacheControl: "no-store",
        ], body: .init(byteBuffer: ByteBuffer(string: rendered.page(communityID: valid.communityID, key: key.lowercased()))))
    }

    func ingest(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard serviceKeys.isValid(request.headers[HTTPField.Name("X-Service-Key")!]) else {
            throw HubError.unauthorized(
                serviceKeys.isConfigured ? "missing or invalid X-Service-Key" : "no service keys are configured (STREAMHUB_SERVICE_KEYS)",
                code: "invalid_service_key")
        }
        let incoming = try await request.decodeJSON(as: IncomingCaption.self, limit: 32 * 1024)
        let caption = try incoming.caption(at: Date().timeIntervalSince1970)
        let delivered = try await captions.ingest(caption)
        return Response(status: .accepted, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: JSONText.object([("stored", .bool(true)), ("delivered_to", .int(delivered))]))))
    }
}

/// Each community's rendered page part, invalidated when its sources change (here, or on another
/// instance through the bus).
final class PageCache: Sendable {
    let database: HubDatabase
    let registry: RegistryService
    private let cache = Mutex<[String: OverlayPage.Rendered]>([:])

    init(database: HubDatabase, registry: RegistryService) {
        self.database = database
        self.registry = registry
    }

    func invalidate(_ community: Int64) {
        cache.withLock { cache in
            cache.removeValue(forKey: "\(community)|true")
            cache.removeValue(forKey: "\(community)|false")
        }
    }

    func rendered(_ community: Int64, captionsOnly: Bool) async throws -> OverlayPage.Rendered {
        let key = "\(community)|\(captionsOnly)"
        if let hit = cache.withLock({ $0[key] }) { return hit }
        let sources = try await database.sql.raw("SELECT \(unsafeRaw: BrowserSource.columns) FROM browser_sources WHERE community_id = \(bind: community)")
            .all().map(BrowserSource.init(row:))
        var links: [Int64: String] = [:]
        for source in sources where source.kind == .stream {
            if let id = source.streamID, let stream = try? await registry.stream(id) { links[id] = stream.link }
        }
        let rendered = OverlayPage.render(sources: sources, streamLinks: links, captionsOnly: captionsOnly)
        cache.withLock { $0[key] = rendered }
        return rendered
    }
}

/// Who loaded which overlay, and whether the key was good: IP, user agent, community, sources served,
/// result, and only the key's first 8 characters.
struct AccessLog: Sendable {
    let database: HubDatabase
    let logger: Logger
    let retention: Double

    func record(community: Int64?, key: String, ip: String?, userAgent: String?, path: String, served: Int, result: String) async {
        do {
            try await database.sql.raw("""
                INSERT INTO overlay_access_log (community_id, key_prefix, ip, user_agent, path, sources_served, result, at)
                VALUES (\(bind: community), \(bind: OverlayKeys.prefix(key)), \(bind: ip), \(bind: userAgent.map { String($0.prefix(300)) }),
                        \(bind: path), \(bind: served), \(bind: result), \(bind: Date().timeIntervalSince1970))
                """).run()
        } catch {
            logger.warning("could not write the overlay access log", metadata: ["error": "\(error)"])
        }
    }

    func prune() async throws {
        try await database.sql.raw("DELETE FROM overlay_access_log WHERE at < \(bind: Date().timeIntervalSince1970 - retention)").run()
    }
}
