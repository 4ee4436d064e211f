import Foundation
import HubCore
import HubStore
import Hummingbird
import Registry
import SQLKit

/// `POST /api/v1/streams/{id}/check` (check now) and `GET /api/v1/streams/{id}/checks` (history).
struct StatusController: Sendable {
    let scheduler: StatusScheduler
    let registry: RegistryService
    let database: HubDatabase

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.post("streams/:id/check") { _, context in
            try context.require(.editor)
            let id = try context.id()
            let (done, stream) = try await scheduler.checkNow(id)
            return jsonResponse(JSONText.object([
                ("stream_id", .int(Int(id))), ("status", .string(done.result.status.rawValue)), ("previous", .string(done.due.stream.status.rawValue)),
                ("method", .string(done.result.method.rawValue)), ("reason", done.result.reason.map(JSONText.Value.string) ?? .null),
                ("latency_ms", .double((done.latency * 1000).rounded() )), ("checked_at", .string(Timestamp.iso8601(done.checkedAt))),
                ("stream", .raw(stream.json)),
            ]))
        }
        group.get("streams/:id/checks") { request, context in
            try context.require(.viewer)
            let id = try context.id()
            _ = try await registry.stream(id)
            let paging = try Paging(request.queryDictionary, defaultPerPage: 50, maxPerPage: 500)
            let total = try await database.reader.raw("SELECT COUNT(*) AS n FROM stream_checks WHERE stream_id = \(bind: id)").first()?.decode(column: "n", as: Int.self) ?? 0
            let rows = try await database.reader.raw("""
                SELECT checked_at, status, method, reason, latency_ms FROM stream_checks WHERE stream_id = \(bind: id)
                ORDER BY checked_at DESC, id DESC LIMIT \(bind: paging.perPage) OFFSET \(bind: paging.offset)
                """).all()
            let items = try rows.map { row in
                JSONText.object([
                    ("checked_at", .string(Timestamp.iso8601(try row.decode(column: "checked_at", as: Double.self)))),
                    ("status", .string(try row.decode(column: "status", as: String.self))),
                    ("method", .string(try row.decode(column: "method", as: String.self))),
                    ("reason", try row.decode(column: "reason", as: String?.self).map(JSONText.Value.string) ?? .null),
                    ("latency_ms", .double(try row.decode(column: "latency_ms", as: Double.self).rounded())),
                ])
            }
            return jsonResponse("{\"checks\":[" + items.joined(separator: ",") + "],\"meta\":" + paging.meta(total: total) + "}")
        }
    }
}
