import Foundation
import HubCore
import HTTPTypes
import Hummingbird
import NIOCore

/// Serves a file from disk in chunks (never whole into memory), with single-range `Range` requests.
enum FileResponder {
    static let fileIO = FileIO()

    /// Serves a small file whole from `cache` (filling it on a miss); larger files are streamed.
    static func respond(path: String, cache: SegmentCache, contentType: String, cacheControl: String, request: Request,
                        context: HubRequestContext) async throws -> Response {
        var data: ByteBuffer?
        if cache.limit > 0 {
            do { data = try await cache.load(path) } catch { throw HubError.notFound("no such file") }
        }
        guard let data else { return try await respond(path: path, contentType: contentType, cacheControl: cacheControl, request: request, context: context) }
        let (status, extra, body) = part(of: data, range: request.headers[.range])
        var headers: HTTPFields = [.contentType: contentType, .cacheControl: cacheControl, .acceptRanges: "bytes"]
        for (name, value) in extra { if let field = HTTPField.Name(name) { headers[field] = value } }
        headers[.contentLength] = String(body.readableBytes)
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: body))
    }

    /// What to send of an in-memory file for a `Range` header: status, extra headers, body (a slice, no copy).
    static func part(of data: ByteBuffer, range header: String?) -> (status: Int, headers: [(String, String)], body: ByteBuffer) {
        let size = data.readableBytes
        guard let header else { return (200, [], data) }
        switch parseRange(header, size: size) {
        case .whole: return (200, [], data)
        case .unsatisfiable: return (416, [("Content-Range", "bytes */\(size)")], ByteBuffer())
        case .range(let part):
            let slice = data.getSlice(at: data.readerIndex + part.lowerBound, length: part.count) ?? ByteBuffer()
            return (206, [("Content-Range", "bytes \(part.lowerBound)-\(part.upperBound)/\(size)")], slice)
        }
    }

    static func respond(path: String, contentType: String, cacheControl: String, request: Request, context: HubRequestContext,
                        download: String? = nil) async throws -> Response {
        guard let size = SegmentStore.size(path) else { throw HubError.notFound("no such file") }
        var headers: HTTPFields = [.contentType: contentType, .cacheControl: cacheControl, .acceptRanges: "bytes"]
        if let download { headers[.contentDisposition] = "attachment; filename=\"\(download)\"" }
        var range: ClosedRange<Int>? = nil
        if let header = request.headers[.range] {
            switch parseRange(header, size: size) {
            case .whole: break
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            case .range(let part): range = part
            }
        }
        guard size > 0 else {
            headers[.contentLength] = "0"
            return Response(status: .ok, headers: headers)
        }
        let part = range ?? 0...(size - 1)
        headers[.contentLength] = String(part.count)
        let body = try await fileIO.loadFile(path: path, range: part, context: context)
        if range != nil {
            headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound)/\(size)"
            return Response(status: .partialContent, headers: headers, body: body)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    enum RangeAnswer: Equatable {
        case whole
        case unsatisfiable
        case range(ClosedRange<Int>)
    }

    /// `bytes=a-b`, `bytes=a-`, `bytes=-n`. Several ranges, or a unit other than bytes, get the whole file.
    static func parseRange(_ header: String, size: Int) -> RangeAnswer {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes="), !text.contains(",") else { return .whole }
        let spec = text.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { return .unsatisfiable }
        func number(_ text: String) -> Int? {
            guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(text)
        }
        if parts[0].isEmpty {
            guard let suffix = number(parts[1]), suffix > 0, size > 0 else { return .unsatisfiable }
            return .range(max(0, size - suffix)...(size - 1))
        }
        guard let start = number(parts[0]), start < size else { return .unsatisfiable }
        if parts[1].isEmpty { return .range(start...(size - 1)) }
        guard let end = number(parts[1]), end >= start else { return .unsatisfiable }
        return .range(start...min(end, size - 1))
    }
}
