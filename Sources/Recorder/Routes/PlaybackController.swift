import AsyncHTTPClient
import Foundation
import HLS
import HubStore
import HTTPTypes
import HubCore
import Hummingbird
import NIOCore
import Realtime
import Synchronization

/// HLS playback as the original recorder defines it: `/recordings/{id}/live.m3u8` (last 5 segments, or from
/// `?utc=`), `/recordings/{id}/start/{timestamp}/{minutes}/vod.m3u8`, `/recordings/{id}/segments/{name}`,
/// `/recordings/{id}/preview.jpg`, and `/live/stream.m3u8`, `/live/{segment}`, `/start/…/vod.m3u8` for the
/// default recording. Recording ids are 128-bit random: the URLs are the capability, as players send no
/// credentials.
final class PlaybackController: Sendable {
    let supervisor: RecorderSupervisor
    /// Live playlists of recordings another instance records, from the index, kept one second.
    let remoteLive = Mutex<[String: (at: ContinuousClock.Instant, body: ByteBuffer, first: Int)]>([:])
    let defaultRecording = Mutex<(at: ContinuousClock.Instant, id: String?)?>(nil)

    /// Fetches segments from the instance recording them (`nil`: no proxying).
    let relay: InstanceRelay?

    init(supervisor: RecorderSupervisor, relay: InstanceRelay? = nil) {
        self.supervisor = supervisor
        self.relay = relay
    }

    static let playlistType = "application/vnd.apple.mpegurl"
    static let segmentCache = "public, max-age=31536000, immutable"

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/recordings/:id/live.m3u8") { request, context in
            try await self.live(try RecordingsController.id(context), request: request, uriPrefix: "segments/")
        }
        router.get("/recordings/:id/start/:timestamp/:minutes/vod.m3u8") { _, context in
            try await self.vod(try RecordingsController.id(context), context: context, uriPrefix: "../../../segments/")
        }
        router.get("/recordings/:id/segments/:name") { request, context in
            try await self.segment(try RecordingsController.id(context), name: context.parameters.get("name") ?? "", request: request, context: context)
        }
        router.get("/recordings/:id/preview.jpg") { request, context in
            let id = try RecordingsController.id(context)
            return try await FileResponder.respond(path: self.supervisor.store.directory(id) + "/preview.jpg", contentType: "image/jpeg",
                                                   cacheControl: "no-cache", request: request, context: context)
        }
        router.get("/live/stream.m3u8") { request, _ in
            try await self.live(try await self.defaultID(), request: request, uriPrefix: "")
        }
        router.get("/live/:segment") { request, context in
            try await self.segment(try await self.defaultID(), name: context.parameters.get("segment") ?? "", request: request, context: context)
        }
        router.get("/start/:timestamp/:minutes/vod.m3u8") { _, context in
            try await self.vod(try await self.defaultID(), context: context, uriPrefix: "../../../live/")
        }
    }

    /// The hot paths, answered from memory on the event loop: a running recording's live.m3u8 and cached
    /// segments. Anything else (a cache miss, `?utc=`) goes through the router.
    func addFastRoutes(to routes: HubFastRoutes) {
        let supervisor = supervisor
        routes.add(prefix: "/recordings/") { path, range in
            let rest = path.dropFirst("/recordings/".count)
            guard rest.utf8.count > 33, let slash = rest.firstIndex(of: "/") else { return nil }
            let id = String(rest[..<slash])
            guard RecordingID.isValid(id) else { return nil }
            let tail = rest[rest.index(after: slash)...]
            if tail == "live.m3u8" {
                guard let body = self.liveFromMemory(id, uriPrefix: "segments/") else { return nil }
                return HubFastRoutes.Answer(headers: [("Content-Type", Self.playlistType), ("Cache-Control", "no-cache")], body: body)
            }
            guard tail.hasPrefix("segments/") else { return nil }
            let name = String(tail.dropFirst("segments/".count))
            guard let file = supervisor.store.path(id, name), let data = supervisor.store.cache.get(file) else { return nil }
            let (status, extra, body) = FileResponder.part(of: data, range: range)
            return HubFastRoutes.Answer(status: .init(statusCode: status), headers: [
                ("Content-Type", SegmentStore.contentType(name)), ("Cache-Control", Self.segmentCache), ("Accept-Ranges", "bytes"),
            ] + extra, body: body)
        }
    }

    /// The live playlist without the database: a running recording's window, or the one-second cache of
    /// another instance's (or a stopped) recording. Notes the handout for retention.
    func liveFromMemory(_ id: String, uriPrefix: String) -> ByteBuffer? {
        var entry = supervisor.runtime(id)?.livePlaylist(uriPrefix: uriPrefix)
        if entry == nil, let cached = remoteLive.withLock({ $0[id + "|" + uriPrefix] }), ContinuousClock.now - cached.at < .seconds(1) {
            entry = (cached.body, cached.first)
        }
        guard let (body, first) = entry else { return nil }
        supervisor.handouts.note(id, lowest: first)
        return body
    }

    func playlistResponse(_ body: ByteBuffer, cache: String) -> Response {
        Response(status: .ok, headers: [.contentType: Self.playlistType, .cacheControl: cache], body: .init(byteBuffer: body))
    }

    func live(_ id: String, request: Request, uriPrefix: String) async throws -> Response {
        if let raw = request.uri.queryParameters["utc"] {
            guard let moment = PlaylistWindows.parseTimestamp(String(raw)) else {
                throw HubError.badRequest("utc must be Unix seconds or YYYYMMDDHHMMSS (UTC)", code: "invalid_timestamp")
            }
            try await requireRecording(id)
            let segments = try await supervisor.index.starting(id, at: moment, count: 5)
            guard let first = segments.first else { throw HubError.notFound("nothing recorded at or after \(Timestamp.iso8601(moment))") }
            let before = try await supervisor.index.discontinuities(id, before: first.sequence)
            guard let playlist = PlaylistWindows.live(segments, count: 5, uriPrefix: uriPrefix, discontinuitiesBefore: before) else {
                throw HubError.notFound("nothing recorded yet")
            }
            supervisor.handouts.note(id, lowest: playlist.mediaSequence)
            return playlistResponse(ByteBuffer(string: playlist.render()), cache: "no-cache")
        }
        if let raw = request.uri.queryParameters["behind"] {
            // A live window delayed by `behind` seconds: it slides like the live one, that far back (the wall's rewind).
            guard let behind = Double(String(raw)), behind.isFinite, (0...(7 * 86_400)).contains(behind) else {
                throw HubError.badRequest("behind must be seconds from 0 to 604800", code: "invalid_behind")
            }
            try await requireRecording(id)
            let segments = try await supervisor.index.ending(id, before: Timestamp.now() - behind, count: 5)
            guard let first = segments.first else { throw HubError.notFound("nothing recorded \(Int(behind)) seconds ago") }
            let before = try await supervisor.index.discontinuities(id, before: first.sequence)
            guard let playlist = PlaylistWindows.live(segments, count: 5, uriPrefix: uriPrefix, discontinuitiesBefore: before) else {
                throw HubError.notFound("nothing recorded yet")
            }
            supervisor.handouts.note(id, lowest: playlist.mediaSequence)
            return playlistResponse(ByteBuffer(string: playlist.render()), cache: "no-cache")
        }
        if let body = liveFromMemory(id, uriPrefix: uriPrefix) { return playlistResponse(body, cache: "no-cache") }
        try await requireRecording(id)
        let segments = try await supervisor.index.recent(id, limit: 5)
        var before = 0
        if let first = segments.first { before = try await supervisor.index.discontinuities(id, before: first.sequence) }
        guard let playlist = PlaylistWindows.live(segments, count: 5, uriPrefix: uriPrefix, discontinuitiesBefore: before) else {
            throw HubError.notFound("nothing recorded yet")
        }
        let body = ByteBuffer(string: playlist.render())
        remoteLive.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[id + "|" + uriPrefix] = (.now, body, playlist.mediaSequence)
        }
        supervisor.handouts.note(id, lowest: playlist.mediaSequence)
        return playlistResponse(body, cache: "no-cache")
    }

    func vod(_ id: String, context: HubRequestContext, uriPrefix: String) async throws -> Response {
        guard let start = PlaylistWindows.parseTimestamp(context.parameters.get("timestamp") ?? "") else {
            throw HubError.badRequest("the timestamp must be Unix seconds or YYYYMMDDHHMMSS (UTC)", code: "invalid_timestamp")
        }
        guard let raw = context.parameters.get("minutes"), let minutes = Double(raw), minutes.isFinite, minutes > 0, minutes <= 1440 else {
            throw HubError.badRequest("the duration is in minutes, above 0 and at most 1440", code: "invalid_duration")
        }
        try await requireRecording(id)
        let segments = try await supervisor.index.window(id, from: start, to: start + minutes * 60)
        guard let playlist = PlaylistWindows.vod(segments, from: start, duration: minutes * 60, uriPrefix: uriPrefix) else {
            throw HubError.notFound("nothing recorded between \(Timestamp.iso8601(start)) and \(Timestamp.iso8601(start + minutes * 60))")
        }
        supervisor.handouts.note(id, lowest: playlist.mediaSequence)
        let ended = start + minutes * 60 < Timestamp.now() - 60
        return playlistResponse(ByteBuffer(string: playlist.render()), cache: ended ? "public, max-age=60" : "no-cache")
    }

    func segment(_ id: String, name: String, request: Request, context: HubRequestContext) async throws -> Response {
        guard let path = supervisor.store.path(id, name) else { throw HubError.notFound("no segment \(name)") }
        if !FileManager.default.fileExists(atPath: path), !InstanceRelay.isProxied(request.headers),
           let answer = try await fromOwner(id, name: name, request: request) {
            return answer
        }
        return try await FileResponder.respond(path: path, cache: supervisor.store.cache, contentType: SegmentStore.contentType(name),
                                               cacheControl: Self.segmentCache, request: request, context: context)
    }

    /// A segment this instance's disk does not hold, fetched from the instance recording it (its owner in the
    /// index, its address from the instance directory). `nil` when there is no other owner to ask; a 404 or
    /// an unreachable owner is the caller's 404 or a 502.
    func fromOwner(_ id: String, name: String, request: Request) async throws -> Response? {
        guard let relay,
              let row = try await supervisor.database.reader.raw("SELECT owner FROM recordings WHERE id = \(bind: id)").first(),
              let owner = try row.decode(column: "owner", as: String?.self),
              let response = try await relay.ask(owner, path: "/recordings/\(id)/segments/\(name)", headers: request.headers[.range].map { [("Range", $0)] } ?? [],
                                                 maxBytes: supervisor.settings.maxSegmentBytes + 1, what: "the instance recording \(id)") else { return nil }
        guard response.status == .ok || response.status == .partialContent else {
            if response.status == .notFound { throw HubError.notFound("no segment \(name)") }
            throw HubError(.badGateway, code: "owner_failed", message: "the instance recording \(id) answered \(response.status.code)")
        }
        let body = response.body
        var headers: HTTPFields = [.cacheControl: Self.segmentCache, .acceptRanges: "bytes", .contentType: SegmentStore.contentType(name)]
        if let range = response.headers.first(name: "Content-Range") { headers[.contentRange] = range }
        return Response(status: .init(code: Int(response.status.code)), headers: headers, body: .init(byteBuffer: body))
    }

    func requireRecording(_ id: String) async throws {
        guard try await supervisor.recording(id) != nil else {
            throw HubError.notFound("no recording with id \(id)")
        }
    }

    /// The configured default recording, else the most recently started (looked up at most once a second).
    func defaultID() async throws -> String {
        if let configured = supervisor.settings.defaultRecording { return configured }
        if let cached = defaultRecording.withLock({ $0 }), ContinuousClock.now - cached.at < .seconds(1) {
            guard let id = cached.id else { throw HubError.notFound("no recording yet") }
            return id
        }
        let id = try await supervisor.database.reader.raw("SELECT id FROM recordings ORDER BY started_at DESC, created_at DESC LIMIT 1").first()?
            .decode(column: "id", as: String.self)
        defaultRecording.withLock { $0 = (.now, id) }
        guard let id else { throw HubError.notFound("no recording yet") }
        return id
    }
}
