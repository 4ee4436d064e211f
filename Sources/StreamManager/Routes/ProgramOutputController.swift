import Foundation
import HubCore
import Hummingbird
import NIOCore

/// A program's local HLS output: `GET /programs/{name}/live.m3u8` and its segments, for signed-in viewers
/// (the same rule as reading the program).
struct ProgramOutputController {
    let renderers: ProgramRenderers

    static let fileIO = FileIO()
    static let maxFileBytes = 64 << 20

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get(":name/live.m3u8") { _, context in
            try context.require(.viewer)
            let name = try ProgramsController.name(context)
            return try await serve("\(renderers.directory)/\(name)/live.m3u8", type: "application/vnd.apple.mpegurl", cache: "no-cache", context: context)
        }
        group.get(":name/:file") { _, context in
            try context.require(.viewer)
            let name = try ProgramsController.name(context)
            guard let file = context.parameters.get("file"), file.count <= 30 else { throw HubError.notFound("no such file") }
            if file.hasPrefix("seg-"), file.hasSuffix(".ts"), file.dropFirst(4).dropLast(3).allSatisfy(\.isNumber) {
                return try await serve("\(renderers.directory)/\(name)/\(file)", type: "video/mp2t", cache: "max-age=60", context: context)
            }
            // The newest preview frame (`preview-320.jpg`, `preview-640.jpg`): what the control page shows first.
            if file.hasPrefix("preview-"), file.hasSuffix(".jpg"), file.dropFirst(8).dropLast(4).allSatisfy(\.isNumber) {
                return try await serve("\(renderers.directory)/\(name)/\(file)", type: "image/jpeg", cache: "no-store", context: context)
            }
            throw HubError.notFound("no such file")
        }
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
