import Foundation
import HubCore
import Hummingbird
import Overlays
import Recorder
import Registry

/// `/api/v1/transcribers` (create and stop: editors; read: viewers), a recording's transcript and the
/// transcript search (viewers: whoever may play the recording).
struct TranscribersController: Sendable {
    let store: TranscriptionStore
    let supervisor: TranscriberSupervisor
    let engines: SpeechEngines
    let recorder: RecorderModule
    let overlays: OverlaysModule
    let programs: TranscriptionModule.Programs?

    static let maxWakeWords = 20
    static let maxWakeWordLength = 60

    struct CreateBody: Decodable {
        var recordingID: String?
        var url: String?
        var program: String?
        var language: String?
        var communityID: Int64?
        var wakeWords: [String]?
        var engine: String?
        var startAt: String?

        enum CodingKeys: String, CodingKey {
            case recordingID = "recording_id", url, program, language, communityID = "community_id", wakeWords = "wake_words", engine, startAt = "start_at"
        }
    }

    func addRoutes(to api: RouterGroup<HubRequestContext>) {
        api.post("transcribers") { request, context in
            let principal = try context.require(.editor)
            let body = try await request.decodeJSON(as: CreateBody.self, limit: 16 << 10)
            let transcriber = try await create(body, by: principal.actor)
            return jsonResponse(transcriber.json, status: .created, headers: [.location: "/api/v1/transcribers/\(transcriber.id)"])
        }
        api.get("transcribers") { request, context in
            try context.require(.viewer)
            let recording = request.uri.queryParameters["recording_id"].map(String.init)
            if let recording, recording.utf8.count != 32 { throw HubError.badRequest("recording_id must be a recording id (32 hex digits)", code: "invalid_recording_id") }
            let live = supervisor.snapshots()
            let rows = try await store.list(recording: recording).map { live[$0.id] ?? $0 }
            return jsonResponse("{\"transcribers\":[" + rows.map(\.json).joined(separator: ",") + "]}")
        }
        api.get("transcribers/engines") { _, context in
            try context.require(.viewer)
            let described = await engines.describe()
            return jsonResponse("{\"engines\":[" + described.map { engine in
                JSONText.object([("name", .string(engine.name)), ("kind", .string(engine.kind)), ("available", .bool(engine.available)),
                                 ("detail", engine.detail.map { .string($0) } ?? .null)])
            }.joined(separator: ",") + "]}")
        }
        api.get("transcribers/:id") { _, context in
            try context.require(.viewer)
            return jsonResponse(try await transcriber(context).json)
        }
        api.delete("transcribers/:id") { _, context in
            try context.require(.editor)
            let id = try await transcriber(context).id
            guard let stopped = try await store.setDesired(id, running: false) else { throw Self.notFound(id) }
            supervisor.kick()
            return jsonResponse(stopped.json)
        }
        api.post("transcribers/:id/start") { _, context in
            try context.require(.editor)
            let found = try await transcriber(context)
            if case .failure(let error) = await engines.command(found.engine, language: found.language) { throw error }
            guard let started = try await store.setDesired(found.id, running: true) else { throw Self.notFound(found.id) }
            supervisor.kick()
            return jsonResponse(started.json)
        }
        api.get("recordings/:id/transcript") { request, context in
            try context.require(.viewer)
            let id = context.parameters.get("id") ?? ""
            guard id.utf8.count == 32, try await recorder.recordingExists(id) else { throw HubError.notFound("no recording with id \(id)") }
            let query = request.queryDictionary
            let from = try Self.moment(query["from"], name: "from") ?? 0
            let to = try Self.moment(query["to"], name: "to") ?? Double(Int32.max) * 4
            guard to > from else { throw HubError.badRequest("to must be after from", code: "invalid_range") }
            let lines = try await store.transcript(recording: id, from: from, to: to)
            let wantsVTT = query["format"] == "vtt" || (query["format"] == nil && request.headers[.accept]?.contains("text/vtt") == true)
            if let format = query["format"], format != "vtt", format != "json" {
                throw HubError.badRequest("format must be json or vtt", code: "invalid_format")
            }
            if wantsVTT {
                let origin = query["from"] != nil ? from : (lines.first?.startsAt ?? from)
                var response = Response(status: .ok, headers: [.contentType: "text/vtt; charset=utf-8"],
                                        body: .init(byteBuffer: .init(string: Self.webVTT(lines, origin: origin))))
                response.headers[.cacheControl] = "no-store"
                return response
            }
            return jsonResponse(JSONText.object([
                ("recording_id", .string(id)), ("from", query["from"] == nil ? .null : .string(Timestamp.iso8601(from))),
                ("to", query["to"] == nil ? .null : .string(Timestamp.iso8601(to))),
                ("lines", .raw("[" + lines.map { $0.json() }.joined(separator: ",") + "]")),
            ]))
        }
        api.get("transcripts/search") { request, context in
            try context.require(.viewer)
            let query = request.queryDictionary
            guard let phrase = query["q"], !TranscriptLine.searchForm(phrase).isEmpty else {
                throw HubError.badRequest("q must name a word or phrase to find", code: "missing_query")
            }
            guard phrase.count <= 200 else { throw HubError.badRequest("q must be at most 200 characters", code: "invalid_query") }
            let recording = query["recording_id"]
            if let recording, recording.utf8.count != 32 { throw HubError.badRequest("recording_id must be a recording id (32 hex digits)", code: "invalid_recording_id") }
            var limit = 50
            if let raw = query["limit"] {
                guard let value = Int(raw), (1...500).contains(value) else { throw HubError.badRequest("limit must be 1 to 500", code: "invalid_limit") }
                limit = value
            }
            var minutes = 5
            if let raw = query["minutes"] {
                guard let value = Int(raw), (1...1440).contains(value) else { throw HubError.badRequest("minutes must be 1 to 1440", code: "invalid_minutes") }
                minutes = value
            }
            let lines = try await store.search(phrase, recording: recording, limit: limit)
            let results = lines.map { line in
                line.json(extra: [("vod_url", .string(RecorderModule.vodPath(recording: line.recordingID, from: line.startsAt, minutes: minutes))),
                                  ("vod_offset", .double(((line.startsAt - line.startsAt.rounded(.down)) * 1000).rounded() / 1000))])
            }
            return jsonResponse(JSONText.object([("query", .string(phrase)), ("results", .raw("[" + results.joined(separator: ",") + "]"))]))
        }
    }

    static func notFound(_ id: String) -> HubError { HubError.notFound("no transcriber with id \(id.prefix(64))") }

    private func transcriber(_ context: HubRequestContext) async throws -> Transcriber {
        let id = context.parameters.get("id") ?? ""
        guard let found = try await store.get(id) else { throw Self.notFound(id) }
        return supervisor.snapshots()[found.id] ?? found
    }

    /// Unix seconds, ISO 8601 or `YYYYMMDDHHMMSS` (UTC).
    static func moment(_ text: String?, name: String) throws -> Double? {
        guard let text, !text.isEmpty else { return nil }
        if text.count == 14, let compact = RecorderModule.parseTimestamp(text) { return compact }
        if let seconds = Double(text) {
            if seconds.isFinite, seconds >= 0 { return seconds }
        } else if text.contains("T"), let parsed = Timestamp.parse(text) {
            return parsed
        }
        throw HubError.badRequest("\(name) must be Unix seconds, ISO 8601 or YYYYMMDDHHMMSS", code: "invalid_timestamp")
    }

    func create(_ body: CreateBody, by actor: String) async throws -> Transcriber {
        let recordingID: String
        var sourceURL: String?
        switch (body.recordingID, body.url?.trimmingCharacters(in: .whitespaces), body.program) {
        case (nil, nil, let program?):
            // A program's output, recorded from disk by the recorder; the transcriber follows that recording.
            guard let programs, program.count <= 64, await programs.exists(program) else {
                throw HubError.validation("program \(program.prefix(64)) is not a known program")
            }
            recordingID = try await recorder.recordLocal(url: programs.outputURL(program), by: actor)
            sourceURL = programs.outputURL(program)
        case (let id?, nil, nil):
            guard try await recorder.recordingExists(id) else { throw HubError.validation("recording_id \(id.prefix(64)) is not a known recording") }
            recordingID = id
        case (nil, let url?, nil) where !url.isEmpty:
            guard url.count <= 2048 else { throw HubError.validation("url must be at most 2048 characters") }
            // The recorder reads the URL (through the source guard); the transcriber follows its recording.
            recordingID = try await recorder.record(url: url, by: actor)
            sourceURL = url
        default:
            throw HubError.validation("give exactly one of recording_id, url and program")
        }
        let language = body.language?.trimmingCharacters(in: .whitespaces) ?? "en-US"
        guard (2...35).contains(language.count), language.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw HubError.validation("language must be a language tag such as en-US")
        }
        if let community = body.communityID {
            guard try await overlays.communityExists(community) else { throw HubError.validation("community_id \(community) is not a known community") }
        }
        let wakeWords = (body.wakeWords ?? []).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard wakeWords.count <= Self.maxWakeWords else { throw HubError.validation("at most \(Self.maxWakeWords) wake_words") }
        for word in wakeWords where word.isEmpty || word.count > Self.maxWakeWordLength || TranscriptLine.searchForm(word).isEmpty {
            throw HubError.validation("each wake word must have a letter or digit and at most \(Self.maxWakeWordLength) characters")
        }
        let engine = body.engine ?? SpeechEngines.builtIn
        if case .failure(let error) = await engines.command(engine, language: language) { throw error }
        var position = -1
        switch body.startAt ?? "live" {
        case "live":
            // The newest segment is the first transcribed.
            position = (try await recorder.newestSegment(of: recordingID) ?? 0) - 1
        case "beginning":
            position = -1
        default:
            throw HubError.validation("start_at must be live or beginning")
        }
        let transcriber = Transcriber(id: TranscriberID.make(), recordingID: recordingID, sourceURL: sourceURL, language: language,
                                      communityID: body.communityID, wakeWords: wakeWords, engine: engine, position: position,
                                      createdBy: actor, now: Timestamp.now())
        try await store.insert(transcriber)
        supervisor.kick()
        return transcriber
    }

    /// A WebVTT file of `lines`, cue times in seconds after `origin`.
    static func webVTT(_ lines: [TranscriptLine], origin: Double) -> String {
        func time(_ seconds: Double) -> String {
            let millis = Int((max(0, seconds) * 1000).rounded())
            return String(format: "%02d:%02d:%02d.%03d", millis / 3_600_000, millis / 60_000 % 60, millis / 1000 % 60, millis % 1000)
        }
        var out = "WEBVTT\n\n"
        for (index, line) in lines.enumerated() {
            let text = line.text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\n", with: " ")
            let end = max(line.endsAt, line.startsAt + 0.5)
            out += "\(index + 1)\n\(time(line.startsAt - origin)) --> \(time(end - origin))\n\(text)\n\n"
        }
        return out
    }
}
