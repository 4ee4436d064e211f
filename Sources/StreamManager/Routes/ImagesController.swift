import Foundation
import HubCore
import Hummingbird
import NIOCore

/// `/api/v1/images`: the pictures image layers show. Uploads are raw bodies (`Content-Type: image/png` or
/// `image/jpeg`), validated before anything is stored; reading needs a viewer, uploading and deleting an editor.
struct ImagesController {
    let images: ImageStore

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("images") { _, context in
            try context.require(.viewer)
            let list = try await images.list()
            return jsonResponse("{\"images\":[" + list.map(\.json).joined(separator: ",") + "]}")
        }
        group.post("images") { request, context in
            let principal = try context.require(.editor)
            let claimed = try Self.claimedFormat(request.headers[.contentType])
            let name = try Self.label(request.uri.queryParameters.get("name"))
            let body = try await request.collectBody(limit: ProgramImage.maxBytes)
            guard body.readableBytes > 0 else { throw HubError.validation("the body is empty; send the image's bytes") }
            let (image, created) = try await images.create(Array(body.readableBytesView), claimed: claimed, name: name, by: principal.actor)
            return jsonResponse(image.json, status: created ? .created : .ok, headers: [.location: "/api/v1/images/\(image.id)"])
        }
        group.get("images/:id") { _, context in
            try context.require(.viewer)
            return jsonResponse(try await images.get(try Self.id(context)).json)
        }
        group.get("images/:id/content") { request, context in
            try context.require(.viewer)
            let id = try Self.id(context)
            let etag = "\"\(try await images.get(id).sha256)\""
            var headers: HTTPFields = [.eTag: etag, .cacheControl: "private, max-age=86400", .xContentTypeOptions: "nosniff",
                                       .contentSecurityPolicy: "default-src 'none'; sandbox"]
            if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) {
                return Response(status: .notModified, headers: headers)
            }
            let (image, data) = try await images.content(id)
            headers[.contentType] = image.format.contentType
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        group.delete("images/:id") { _, context in
            try context.require(.editor)
            try await images.delete(try Self.id(context))
            return Response(status: .noContent)
        }
    }

    static func id(_ context: HubRequestContext) throws -> String {
        guard let id = context.parameters.get("id"), ProgramImage.isValidID(id) else { throw HubError.notFound("no such image") }
        return id
    }

    /// What the Content-Type header says the body is: PNG, JPEG, or nothing said (absent or octet-stream:
    /// the bytes decide). Anything else is refused.
    static func claimedFormat(_ header: String?) throws -> ProgramImage.Format? {
        guard let header else { return nil }
        let type = header.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch type {
        case "image/png": return .png
        case "image/jpeg", "image/jpg", "image/pjpeg": return .jpeg
        case "application/octet-stream", "": return nil
        default:
            throw HubError(.unsupportedMediaType, code: "unsupported_media_type",
                           message: "upload a PNG or JPEG as the raw body with Content-Type image/png or image/jpeg (got \(type.prefix(60)))")
        }
    }

    static func label(_ raw: String?) throws -> String? {
        guard let name = raw?.trimmingCharacters(in: .whitespaces), !name.isEmpty else { return nil }
        guard name.count <= 100, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw HubError.validation("name must be at most 100 characters without control characters")
        }
        return name
    }
}
