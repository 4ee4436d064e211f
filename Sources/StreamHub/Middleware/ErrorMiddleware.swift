import HubCore
import HubStore
import Hummingbird
import NIOCore

/// Turns every failure into the JSON error body `{"error":{"code","message"}}`: domain errors as they are,
/// Hummingbird's own (404, 405, 413, …) mapped to a code, and anything unexpected into a logged 500 that
/// reveals nothing. Also stamps `X-Request-Id` on every response.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HubError {
            response = try error.response(from: request, context: context)
        } catch let error as HTTPError {
            response = try Self.translate(error).response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            let status = error.status
            response = try HubError(status, code: Self.code(for: status), message: status.reasonPhrase).response(from: request, context: context)
        } catch where HubDatabase.isUnavailable(error) {
            // The database is down or restarting: a clear, retryable answer, not a 500.
            context.logger.warning("database unavailable", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            response = try HubError(.serviceUnavailable, code: "database_unavailable", message: "the database is unreachable right now; try again shortly",
                                    headers: [.retryAfter: "2"]).response(from: request, context: context)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            response = try HubError.internalError().response(from: request, context: context)
        }
        response.headers[.init("X-Request-Id")!] = context.requestID
        return response
    }

    static func translate(_ error: HTTPError) -> HubError {
        let message: String
        switch error.status {
        case .notFound: message = "no such resource"
        case .methodNotAllowed: message = "this method is not allowed here"
        case .contentTooLarge: message = "the request body is too large"
        default: message = error.body ?? error.status.reasonPhrase
        }
        return HubError(error.status, code: code(for: error.status), message: message, headers: error.headers)
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .badRequest: return "bad_request"
        case .unauthorized: return "unauthorized"
        case .forbidden: return "forbidden"
        case .notFound: return "not_found"
        case .methodNotAllowed: return "method_not_allowed"
        case .conflict: return "conflict"
        case .contentTooLarge: return "payload_too_large"
        case .unsupportedMediaType: return "unsupported_media_type"
        case .unprocessableContent: return "validation_failed"
        case .tooManyRequests: return "rate_limited"
        case .serviceUnavailable: return "unavailable"
        default: return status.code >= 500 ? "internal_error" : "http_\(status.code)"
        }
    }
}
