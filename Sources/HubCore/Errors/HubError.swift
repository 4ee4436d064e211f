import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The one error type every module answers a request with: a status, a stable machine-readable `code`
/// and a message that says what was wrong and what to do. Rendered as `{"error":{"code","message"}}`.
public struct HubError: Error, HTTPResponseError, CustomStringConvertible, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: jsonBody())))
    }

    /// The JSON body: `{"error":{"code":…,"message":…}}`.
    public func jsonBody() -> [UInt8] {
        struct Body: Encodable {
            struct Inner: Encodable { let code: String; let message: String }
            let error: Inner
        }
        return (try? Array(JSONEncoder().encode(Body(error: .init(code: code, message: message)))))
            ?? Array(#"{"error":{"code":"internal_error","message":"error"}}"#.utf8)
    }
}

extension HubError {
    public static func badRequest(_ message: String, code: String = "bad_request") -> HubError {
        HubError(.badRequest, code: code, message: message)
    }
    public static func invalidJSON(_ message: String) -> HubError {
        HubError(.badRequest, code: "invalid_json", message: message)
    }
    public static func validation(_ message: String) -> HubError {
        HubError(.unprocessableContent, code: "validation_failed", message: message)
    }
    public static func unauthorized(_ message: String, code: String = "unauthorized") -> HubError {
        HubError(.unauthorized, code: code, message: message)
    }
    public static func forbidden(_ message: String) -> HubError {
        HubError(.forbidden, code: "forbidden", message: message)
    }
    public static func notFound(_ message: String) -> HubError {
        HubError(.notFound, code: "not_found", message: message)
    }
    public static func conflict(_ message: String, code: String = "conflict") -> HubError {
        HubError(.conflict, code: code, message: message)
    }
    public static func payloadTooLarge(limit: Int) -> HubError {
        HubError(.contentTooLarge, code: "payload_too_large", message: "request body is larger than \(limit) bytes")
    }
    public static func tooManyRequests(retryAfterSeconds: Int) -> HubError {
        HubError(.tooManyRequests, code: "rate_limited", message: "too many requests; retry after \(retryAfterSeconds) s",
                 headers: [.retryAfter: String(retryAfterSeconds)])
    }
    public static func unavailable(_ message: String) -> HubError {
        HubError(.serviceUnavailable, code: "unavailable", message: message)
    }
    public static func internalError() -> HubError {
        HubError(.internalServerError, code: "internal_error", message: "the server failed to handle this request; it has been logged")
    }
}
