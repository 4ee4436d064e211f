import Foundation
import HubCore
import HubStore
import Hummingbird
import NIOCore

/// `GET /health`: 200 when the database answers, 503 when it does not, with each service's state.
struct HealthController {
    let database: HubDatabase
    let health: ServiceHealth
    let instanceID: String
    let version: String
    let access: OperationsAccess

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/health") { request, context in
            try await check(details: access.decide(request, context: context) == .allowed)
        }
    }

    /// The status (200 while the database answers, else 503); with `details`, the database, the instance
    /// and every service too.
    func check(details: Bool = true) async throws -> Response {
        let started = ContinuousClock.now
        var databaseStatus: (ok: Bool, detail: String)
        do {
            try await database.ping()
            databaseStatus = (true, "\(database.kind.rawValue) answered")
        } catch {
            databaseStatus = (false, "\(database.kind.rawValue) unreachable: \(Self.short(error))")
        }
        let elapsed = ContinuousClock.now - started
        let latencyMs = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        let services = health.snapshot.sorted { $0.key < $1.key }.map { name, entry in
            (name, JSONText.Value.raw(JSONText.object([("status", .string(entry.status.rawValue)), ("detail", entry.detail.map(JSONText.Value.string) ?? .null)])))
        }
        let body = !details ? JSONText.object([("status", .string(databaseStatus.ok ? "ok" : "unavailable")), ("version", .string(version))])
          : JSONText.object([
            ("status", .string(databaseStatus.ok ? "ok" : "unavailable")),
            ("version", .string(version)),
            ("instance_id", .string(instanceID)),
            ("database", .raw(JSONText.object([
                ("status", .string(databaseStatus.ok ? "ok" : "unavailable")),
                ("kind", .string(database.kind.rawValue)),
                ("latency_ms", .double((latencyMs * 10).rounded() / 10)),
                ("detail", .string(databaseStatus.detail)),
            ]))),
            ("services", .raw(JSONText.object(services))),
        ])
        var response = Response(status: databaseStatus.ok ? .ok : .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: body)))
        response.headers[.contentType] = "application/json; charset=utf-8"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func short(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}
