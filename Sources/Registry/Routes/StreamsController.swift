import Foundation
import HubCore
import Hummingbird

/// `/api/v1/streams`: the StreamSource API.
struct StreamsController {
    let service: RegistryService
    let access: Access

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("streams") { request, context in try await list(request, context: context) }
        group.post("streams") { request, context in try await create(request, context: context) }
        group.get("streams/:id") { _, context in
            try context.require(.viewer)
            let stream = try await service.stream(try context.id())
            return jsonResponse(stream.json, headers: [.eTag: stream.etag])
        }
        group.patch("streams/:id") { request, context in try await update(request, context: context) }
        group.put("streams/:id") { request, context in try await update(request, context: context) }
        group.delete("streams/:id") { _, context in
            let principal = try context.require(.admin)
            try await service.delete(try context.id(), by: .init(principal: principal, requestID: context.requestID))
            return Response(status: .noContent)
        }
        group.put("streams/:id/pin") { _, context in try await set(context, action: "pin") { $0.isPinned = true } }
        group.delete("streams/:id/pin") { _, context in try await set(context, action: "unpin") { $0.isPinned = false } }
        group.post("streams/:id/archive") { _, context in try await set(context, action: "archive") { $0.isArchived = true } }
        group.post("streams/:id/unarchive") { _, context in try await set(context, action: "unarchive") { $0.isArchived = false } }
        group.put("streams/:id/lock") { _, context in
            let principal = try context.require(.editor)
            let lock = try await service.lock(try context.id(), by: principal)
            return jsonResponse(lock.lockedPayload)
        }
        group.delete("streams/:id/lock") { _, context in
            let principal = try context.require(.editor)
            let id = try context.id()
            _ = try await service.stream(id)
            try service.unlock(id, by: principal)
            return Response(status: .noContent)
        }
    }

    func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.require(.viewer)
        let parameters = request.queryDictionary
        let wall: Bool
        switch parameters["format"] {
        case nil, "", "json": wall = false
        case "streamwall": wall = true
        default: throw HubError.validation("format must be json or streamwall")
        }
        let query = try StreamQuery(parameters: parameters)
        let (body, etag) = try await service.list(query, wall: wall)
        if let match = request.headers[.ifNoneMatch], RegistryService.matches(match, etag) {
            return Response(status: .notModified, headers: [.eTag: etag])
        }
        return jsonResponse(body, headers: [.eTag: etag, .cacheControl: "no-cache"])
    }

    func create(_ request: Request, context: HubRequestContext) async throws -> Response {
        let principal = try context.require(.editor)
        let input = try await request.decodeJSON(as: StreamInput.self, limit: registryBodyLimit)
        let (stream, created) = try await service.create(input, by: .init(principal: principal, requestID: context.requestID))
        return jsonResponse(stream.json, status: created ? .created : .ok,
                            headers: [.eTag: stream.etag, .location: "/api/v1/streams/\(stream.id)"])
    }

    func update(_ request: Request, context: HubRequestContext) async throws -> Response {
        let principal = try context.require(.editor)
        let id = try context.id()
        let input = try await request.decodeJSON(as: StreamInput.self, limit: registryBodyLimit)
        let changes = try StreamChanges(input, requireLink: false)
        let stream = try await service.update(id, changes: changes, ifMatch: request.headers[.ifMatch],
                                              by: .init(principal: principal, requestID: context.requestID))
        return jsonResponse(stream.json, headers: [.eTag: stream.etag])
    }

    func set(_ context: HubRequestContext, action: String, _ change: (inout StreamChanges) -> Void) async throws -> Response {
        let principal = try context.require(.editor)
        var changes = try StreamChanges(StreamInput(), requireLink: false)
        change(&changes)
        let stream = try await service.update(try context.id(), changes: changes, ifMatch: nil, action: action,
                                              by: .init(principal: principal, requestID: context.requestID))
        return jsonResponse(stream.json, headers: [.eTag: stream.etag])
    }
}
