import HubCore
import Hummingbird
import Logging
import Metrics

/// Counts requests by route, method and status, times them by route, and refuses bodies whose declared
/// length is over the limit before reading a byte of them.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let factory: any MetricsFactory
    let maxBodySize: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var status: Int = 500
        defer {
            let route = context.endpointPath ?? "unmatched"
            let elapsed = ContinuousClock.now - start
            Counter(label: "streamhub_http_requests_total",
                    dimensions: [("route", route), ("method", request.method.rawValue), ("status", String(status))],
                    factory: factory).increment()
            Timer(label: "streamhub_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
                .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            if status >= 500 {
                context.logger.warning("request failed", metadata: ["status": "\(status)", "path": "\(request.uri.path)"])
            } else {
                context.logger.debug("request", metadata: ["status": "\(status)", "method": "\(request.method)", "path": "\(request.uri.path)"])
            }
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodySize {
            status = 413
            throw HubError.payloadTooLarge(limit: maxBodySize)
        }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch let error as any HTTPResponseError {
            status = error.status.code
            throw error
        }
    }
}
