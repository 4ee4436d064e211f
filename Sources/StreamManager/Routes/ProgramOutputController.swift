import Foundation
import HubCore
import Hummingbird
import NIOCore
import Recorder

/// A program's HLS output: `GET /programs/{name}/live.m3u8` and its segments, for signed-in viewers (the
/// same rule as reading the program). Served from disk where the program renders; another instance passes
/// the request (with the caller's credentials) on to the one rendering it.
struct ProgramOutputController {
    let renderers: ProgramRenderers
    let relay: InstanceRelay?

    static let fileIO = FileIO()
    static let maxFileBytes = 64 << 20

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get(":name/live.m3u8") { request, context in
            try context.require(.viewer)
            let name = try ProgramsController.name(context)
            if let answer = try await fromRenderer(name, file: "live.m3u8", request: request) { return answer }
            return try await serve("\(renderers.directory)/\(name)/live.m3u8", type: "application/vnd.apple.mpegurl", cache: "no-cache", context: context)
        }
        group.get(":name/:file") { request, context in
            try context.require(.viewer)
            let name = try ProgramsController.name(context)
            guard let file = context.parameters.get("file"), file.count <= 30 else { throw HubError.notFound("no such file") }
            let isSegment = file.hasPrefix("seg-") && file.hasSuffix(".ts") && file.dropFirst(4).dropLast(3).allSatisfy(\.isNumber)
            let isPreview = file.hasPrefix("preview-") && file.hasSuffix(".jpg") && file.dropFirst(8).dropLast(4).allSatisfy(\.isNumber)
            guard isSegment || isPreview else { throw HubError.notFound("no such file") }
            if let answer = try await fromRenderer(name, file: file, request: request) { return answer }
            if isSegment {
                return try await serve("\(renderers.directory)/\(name)/\(file)", type: "video/mp2t", cache: "max-age=60", context: context)
            }
            // The newest preview frame (`preview-320.jpg`, `preview-640.jpg`): what the control page shows first.
            return try await serve("\(renderers.directory)/\(name)/\(file)", type: "image/jpeg", cache: "no-store", context: context)
        }
    }

    /// The file from the instance rendering the program, when that is another one (`nil`: serve it from here).
    func fromRenderer(_ name: String, file: String, request: Request) async throws -> Response? {
        guard let relay, let leases = renderers.leases, !renderers.rendersHere(name), !InstanceRelay.isProxied(request.headers),
              let holder = await leases.holder(of: name) else { return nil }
        // The holder checks the caller's credentials again, by the same rule.
        var credentials: [(String, String)] = []
        if let authorization = request.headers[.authorization] { credentials.append(("Authorization", authorization)) }
        if let cookie = request.headers[.cookie] { credentials.append(("Cookie", cookie)) }
        let query = request.uri.query.map { "?" + $0 } ?? ""
        guard let answer = try await relay.ask(holder, path: "/programs/\(name)/\(file)\(query)", headers: credentials, maxBytes: Self.maxFileBytes,
                                               what: "the instance rendering program \(name)") else { return nil }
        return Response(status: .init(code: Int(answer.status.code)),
                        headers: [.contentType: answer.headers.first(name: "Content-Type") ?? "application/octet-stream",
                                  .cacheControl: answer.headers.first(name: "Cache-Control") ?? "no-store"],
                        body: .init(byteBuffer: answer.body))
    }

    func serve(_ path: String, type: String, cache: String, context: HubRequestContext) async throws -> Response {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), let size = attributes[.size] as? Int, size > 0,
              size <= Self.maxFileBytes else {
            throw HubError.notFound("the program has no output yet (is it running?)")
        }
        let body = try await Self.fileIO.loadFile(path: path, context: context)
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: cache], body: body)
    }
}
