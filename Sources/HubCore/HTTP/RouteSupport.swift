import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A JSON response from already-encoded text.
public func jsonResponse(_ body: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var headers = headers
    headers[.contentType] = "application/json; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
}

extension HubRequestContext {
    /// A positive integer path parameter; anything else is a 404 (no such thing can exist).
    public func id(_ name: String = "id", entity: String = "stream") throws -> Int64 {
        guard let raw = parameters.get(name), let id = Int64(raw), id > 0 else {
            throw HubError.notFound("no \(entity) with id \(parameters.get(name) ?? "")")
        }
        return id
    }
}

extension Request {
    /// The query string as a dictionary (the last value wins for repeated names).
    public var queryDictionary: [String: String] {
        var out: [String: String] = [:]
        for (key, value) in uri.queryParameters { out[String(key)] = String(value) }
        return out
    }
}

/// Paging parameters shared by the smaller lists (users, audit, streamers).
public struct Paging: Sendable {
    public var page = 1
    public var perPage: Int

    public init(_ parameters: [String: String], defaultPerPage: Int = 50, maxPerPage: Int = 100) throws {
        func integer(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let raw = parameters[name], !raw.isEmpty else { return nil }
            guard let value = Int(raw), range.contains(value) else {
                throw HubError.validation("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        page = try integer("page", 1...100_000) ?? 1
        perPage = try integer("per_page", 1...maxPerPage) ?? defaultPerPage
    }

    public var offset: Int { (page - 1) * perPage }

    public func meta(total: Int) -> String {
        JSONText.object([
            ("current_page", .int(page)), ("total_pages", .int(total == 0 ? 0 : (total + perPage - 1) / perPage)),
            ("total_count", .int(total)), ("per_page", .int(perPage)),
        ])
    }
}
