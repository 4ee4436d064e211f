import Foundation
import HTTPTypes
import HubCore
import Hummingbird
import NIOCore
import Registry

/// `/api/v1/discovery/messages`, the ignore lists, and the spreadsheet bridge (`streams.csv`, CSV import).
struct DiscoveryController: Sendable {
    let discovery: DiscoveryService
    let ignoreLists: IgnoreLists
    let registry: RegistryService
    let maxBodySize: Int

    struct MessageBody: Decodable {
        let source: String
        let channel: String?
        let author: String?
        let text: String
        let postedAt: Double?
        let messageID: String?

        enum CodingKeys: String, CodingKey { case source, channel, author, text, postedAt = "posted_at", messageID = "message_id" }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            source = try container.decode(String.self, forKey: .source)
            channel = try container.decodeIfPresent(String.self, forKey: .channel)
            author = try container.decodeIfPresent(String.self, forKey: .author)
            text = try container.decode(String.self, forKey: .text)
            messageID = try container.decodeIfPresent(String.self, forKey: .messageID)
            if let seconds = try? container.decodeIfPresent(Double.self, forKey: .postedAt) {
                postedAt = seconds
            } else if let text = try container.decodeIfPresent(String.self, forKey: .postedAt) {
                guard let seconds = Timestamp.parse(text) else {
                    throw DecodingError.dataCorruptedError(forKey: .postedAt, in: container, debugDescription: "posted_at must be an ISO 8601 time or Unix seconds")
                }
                postedAt = seconds
            } else {
                postedAt = nil
            }
        }
    }

    struct ImportBody: Decodable {
        struct Entry: Decodable { let type: String; let value: String; let note: String? }
        let entries: [Entry]?
        let type: String?
        let values: [String]?
        let note: String?
    }

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.post("discovery/messages") { request, context in
            let principal = try context.require(.editor)
            let body = try await request.decodeJSON(as: MessageBody.self, limit: 64 * 1024)
            let message = ChatMessage(source: body.source, channel: body.channel, author: body.author, text: body.text, postedAt: body.postedAt,
                                      id: body.messageID)
            let results = try await discovery.ingest(message, by: principal, requestID: context.requestID)
            return jsonResponse("{\"links\":[" + results.map(\.json).joined(separator: ",") + "]}")
        }

        group.get("ignore_lists") { request, context in
            try context.require(.viewer)
            let query = request.queryDictionary
            let paging = try Paging(query, defaultPerPage: 100, maxPerPage: 1000)
            var type: IgnoreLists.EntryType?
            if let raw = query["type"], !raw.isEmpty {
                guard let parsed = IgnoreLists.EntryType(rawValue: raw) else { throw Self.badType() }
                type = parsed
            }
            let (items, total) = try await ignoreLists.list(type: type, paging: paging)
            return jsonResponse("{\"entries\":[" + items.joined(separator: ",") + "],\"meta\":" + paging.meta(total: total) + "}")
        }
        group.get("ignore_lists/by_type") { _, context in
            try context.require(.viewer)
            return jsonResponse(ignoreLists.byType())
        }
        group.post("ignore_lists") { request, context in
            let principal = try context.require(.editor)
            let entry = try await request.decodeJSON(as: IgnoreLists.NewEntry.self, limit: 16 * 1024)
            let result = try await ignoreLists.add([entry], by: principal.actor)
            if let invalid = result.invalid.first { throw HubError.validation(invalid.error) }
            guard !result.added.isEmpty else { throw HubError.conflict("'\(entry.value.prefix(100))' is already on the \(entry.type) list", code: "exists") }
            return jsonResponse(JSONText.object([("added", .strings(result.added))]), status: .created)
        }
        group.post("ignore_lists/import") { request, context in
            let principal = try context.require(.editor)
            let body = try await request.decodeJSON(as: ImportBody.self, limit: maxBodySize)
            var entries = (body.entries ?? []).map { IgnoreLists.NewEntry(type: $0.type, value: $0.value, note: $0.note) }
            if let values = body.values {
                guard let type = body.type else { throw HubError.validation("give type with values, or entries: [{type, value}]") }
                entries += values.map { IgnoreLists.NewEntry(type: type, value: $0, note: body.note) }
            }
            guard !entries.isEmpty else { throw HubError.validation("nothing to import: send entries: [{type, value}] or type and values") }
            guard entries.count <= 10_000 else { throw HubError.validation("at most 10,000 entries per import") }
            let dryRun = request.queryDictionary["dry_run"].map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false
            let result = try await ignoreLists.add(entries, by: principal.actor, dryRun: dryRun)
            return jsonResponse(JSONText.object([
                ("dry_run", .bool(dryRun)), ("added", .int(result.added.count)), ("existing", .int(result.existing)),
                ("invalid", .raw("[" + result.invalid.map { JSONText.object([("value", .string(String($0.value.prefix(200)))), ("error", .string($0.error))]) }.joined(separator: ",") + "]")),
            ]))
        }
        group.delete("ignore_lists/:id") { _, context in
            try context.require(.editor)
            try await ignoreLists.remove(try context.id(entity: "ignore list entry"))
            return Response(status: .noContent)
        }

        group.get("streams.csv") { request, context in
            try context.require(.viewer)
            let archived = request.queryDictionary["is_archived"]
            guard archived == nil || ["true", "false", "any"].contains(archived!) else { throw HubError.validation("is_archived must be true, false or any") }
            var streams = try await registry.allStreams(includeArchived: archived == "true" || archived == "any")
            if archived == "true" { streams = streams.filter(\.isArchived) }
            var headers = HTTPFields()
            headers[.contentType] = "text/csv; charset=utf-8"
            headers[.contentDisposition] = "attachment; filename=\"streams.csv\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: StreamsCSV.document(streams))))
        }
        group.post("streams/import") { request, context in
            let principal = try context.require(.editor)
            let buffer = try await request.body.collect(upTo: maxBodySize)
            guard let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes), !text.isEmpty else {
                throw HubError.validation("send the CSV as the request body (UTF-8), with a header row naming at least Link")
            }
            let dryRun = request.queryDictionary["dry_run"].map { ["1", "true", "yes"].contains($0.lowercased()) } ?? false
            let importer = StreamsImport(registry: registry)
            let plan = try await importer.plan(text)
            if !dryRun { try await importer.apply(plan, by: principal, requestID: context.requestID) }
            return jsonResponse(plan.json(dryRun: dryRun))
        }
    }

    static func badType() -> HubError {
        HubError.validation("type must be one of " + IgnoreLists.EntryType.allCases.map(\.rawValue).joined(separator: ", "))
    }
}
