import Foundation
import HLS
import HubCore
import HubStore
import Hummingbird
import Registry
import SQLKit

/// `POST/GET /api/v1/recordings`, `GET/DELETE /api/v1/recordings/{id}` and the exports below them.
struct RecordingsController: Sendable {
    let supervisor: RecorderSupervisor
    let exporter: Exporter
    let registry: RegistryService
    let maxBodySize: Int

    struct CreateBody: Decodable {
        var url: String?
        var streamID: Int64?
        var variant: String?
        var retention: Double?

        enum CodingKeys: String, CodingKey { case url, sourceURL = "source_url", streamID = "stream_id", variant, retention }

        init(url: String) {
            self.url = url
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            url = try container.decodeIfPresent(String.self, forKey: .url) ?? container.decodeIfPresent(String.self, forKey: .sourceURL)
            streamID = try container.decodeIfPresent(Int64.self, forKey: .streamID)
            if let number = try? container.decodeIfPresent(Int.self, forKey: .variant) {
                variant = String(number)
            } else {
                variant = try container.decodeIfPresent(String.self, forKey: .variant)
            }
            if let seconds = try? container.decodeIfPresent(Double.self, forKey: .retention) {
                retention = seconds
            } else if let text = try container.decodeIfPresent(String.self, forKey: .retention) {
                guard let seconds = Self.duration(text) else {
                    throw DecodingError.dataCorruptedError(forKey: .retention, in: container,
                                                           debugDescription: "expected seconds, or a duration such as \"90m\", \"24h\", \"7d\"")
                }
                retention = seconds
            }
        }

        /// "90s", "30m", "24h", "7d" → seconds.
        static func duration(_ text: String) -> Double? {
            let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            guard let unit = text.last.flatMap({ units[$0] }), let value = Double(text.dropLast()), value.isFinite, value >= 0 else {
                return Double(text)
            }
            return value * unit
        }
    }

    func addRoutes(to api: RouterGroup<HubRequestContext>) {
        api.post("recordings") { request, context in
            let principal = try context.require(.editor)
            let body = try await request.decodeJSON(as: CreateBody.self, limit: min(maxBodySize, 64 << 10))
            let recording = try await create(body, by: principal.actor)
            return jsonResponse(recording.json, status: .created, headers: [.location: "/api/v1/recordings/\(recording.id)"])
        }
        api.get("recordings") { request, context in
            try context.require(.viewer)
            return try await list(request.queryDictionary)
        }
        api.get("recordings/:id") { _, context in
            try context.require(.viewer)
            return jsonResponse(try await recording(try Self.id(context)).json)
        }
        api.delete("recordings/:id") { _, context in
            try context.require(.editor)
            let id = try Self.id(context)
            guard try await supervisor.stop(id) else { throw HubError.notFound("no recording with id \(id)") }
            return jsonResponse(try await recording(id).json)
        }
        api.post("recordings/:id/exports") { request, context in
            let principal = try context.require(.editor)
            let id = try Self.id(context)
            let body = try await request.decodeJSON(as: Exporter.Body.self, limit: min(maxBodySize, 16 << 10))
            _ = try await recording(id)
            let job = try await exporter.create(recording: id, body: body, by: principal.actor)
            return jsonResponse(job.json, status: .accepted, headers: [.location: "/api/v1/recordings/\(id)/exports/\(job.id)"])
        }
        api.get("recordings/:id/exports") { _, context in
            try context.require(.viewer)
            let id = try Self.id(context)
            _ = try await recording(id)
            return jsonResponse("{\"exports\":[" + (try await exporter.list(recording: id)).map(\.json).joined(separator: ",") + "]}")
        }
        api.get("recordings/:id/exports/:export") { _, context in
            try context.require(.viewer)
            return jsonResponse(try await exporter.job(recording: try Self.id(context), export: try Self.id(context, "export")).json)
        }
        api.get("recordings/:id/exports/:export/file") { request, context in
            try context.require(.viewer)
            let job = try await exporter.job(recording: try Self.id(context), export: try Self.id(context, "export"))
            guard job.state == .done, let path = exporter.path(job) else {
                throw HubError.conflict("the export is \(job.state.rawValue), not done", code: "export_not_ready")
            }
            return try await FileResponder.respond(path: path, contentType: job.format == "mp4" ? "video/mp4" : "video/mp2t",
                                                   cacheControl: "private, max-age=3600", request: request, context: context,
                                                   download: "recording-\(job.recordingID)-\(job.id).\(job.format)")
        }
    }

    static func id(_ context: HubRequestContext, _ name: String = "id") throws -> String {
        guard let raw = context.parameters.get(name), RecordingID.isValid(raw) else {
            throw HubError.notFound("no \(name == "id" ? "recording" : "export") with id \(context.parameters.get(name) ?? "")")
        }
        return raw
    }

    /// `local`: a URL of the server's own HLS (``LocalSources``), which the source guard would refuse.
    func create(_ body: CreateBody, by actor: String, local: Bool = false) async throws -> Recording {
        var url = body.url?.trimmingCharacters(in: .whitespaces)
        if let streamID = body.streamID {
            let stream: StreamRecord
            do { stream = try await registry.stream(streamID) } catch let error as HubError where error.status == .notFound {
                throw HubError.validation("stream_id \(streamID): no such stream")
            }
            if url?.isEmpty ?? true { url = stream.link }
        }
        guard let url, !url.isEmpty else { throw HubError.validation("url is required (or a stream_id whose link is recorded)") }
        guard url.utf8.count <= 2048 else { throw HubError.validation("url is longer than 2048 bytes") }
        let variantText = (body.variant ?? "best").lowercased()
        guard VariantChoice(variantText) != nil else {
            throw HubError.validation("variant must be best, worst, or a maximum bandwidth in bits per second")
        }
        let retention = body.retention ?? supervisor.settings.defaultRetention
        guard retention.isFinite, (60...315_360_000).contains(retention) else {
            throw HubError.validation("retention must be from 60 seconds to 10 years")
        }
        if !local {
            do { _ = try await supervisor.guardrail.check(url) } catch {
                throw HubError(.unprocessableContent, code: "url_refused", message: "url refused: \(error.description)")
            }
        }
        guard supervisor.count < supervisor.settings.maxRecordings else {
            throw HubError.unavailable("this instance already runs \(supervisor.settings.maxRecordings) recordings")
        }
        let recording = Recording(id: RecordingID.make(), sourceURL: url, inputKind: PreProcessor.detect(url), streamID: body.streamID,
                                  variant: variantText, retention: retention.rounded(), createdBy: actor, now: Timestamp.now())
        try await supervisor.start(recording)
        return supervisor.runtime(recording.id)?.snapshot ?? recording
    }

    /// A recording: the running snapshot when this instance records it, else its row.
    func recording(_ id: String) async throws -> Recording {
        guard let recording = try await supervisor.recording(id) else { throw HubError.notFound("no recording with id \(id)") }
        return recording
    }

    func list(_ query: [String: String]) async throws -> Response {
        let paging = try Paging(query, defaultPerPage: 50, maxPerPage: 500)
        var conditions: [any SQLExpression] = []
        if let state = query["state"], !state.isEmpty {
            let states = state.split(separator: ",").map(String.init)
            guard states.allSatisfy({ RecordingState(rawValue: $0) != nil }) else {
                throw HubError.validation("state must be one or more of " + RecordingState.allCases.map(\.rawValue).joined(separator: ", "))
            }
            conditions.append(SQLBinaryExpression(SQLIdentifier("state"), .in, SQLGroupExpression(states.map { SQLBind($0) })))
        }
        if let raw = query["stream_id"], !raw.isEmpty {
            guard let streamID = Int64(raw) else { throw HubError.validation("stream_id must be an integer") }
            conditions.append(SQLBinaryExpression(SQLIdentifier("stream_id"), .equal, SQLBind(streamID)))
        }
        let filter: any SQLExpression = conditions.isEmpty
            ? SQLRaw("1 = 1")
            : conditions.dropFirst().reduce(conditions[0]) { SQLBinaryExpression($0, .and, $1) }
        let db = supervisor.database.reader
        let total = try await db.raw("SELECT COUNT(*) AS n FROM recordings WHERE \(filter)").first()?.decode(column: "n", as: Int.self) ?? 0
        let rows = try await db.raw("""
            SELECT \(unsafeRaw: Recording.columns) FROM recordings WHERE \(filter) ORDER BY created_at DESC, id
            LIMIT \(bind: paging.perPage) OFFSET \(bind: paging.offset)
            """).all()
        let live = supervisor.snapshots()
        let items = try rows.map { row -> String in
            let stored = try Recording(row: row)
            return (live[stored.id] ?? stored).json
        }
        return jsonResponse("{\"recordings\":[" + items.joined(separator: ",") + "],\"meta\":" + paging.meta(total: total) + "}")
    }
}
