import HubCore
import Hummingbird
import Logging
import Metrics
import Synchronization

/// Counts requests by route, method and status, times them by route, and refuses bodies whose declared
/// length is over the limit before reading a byte of them (`--max-body-size`, or a path's own larger limit:
/// image uploads).
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let factory: any MetricsFactory
    let maxBodySize: Int
    /// Paths (exact) whose bodies may be larger than `maxBodySize`; their handlers enforce their own limit.
    let largerBodies: [String: Int]
    /// Metric handles by route, method and status: made once, not per request (making one is a registry
    /// lookup with a lock and label validation).
    let handles = MetricHandles()

    final class MetricHandles: Sendable {
        let counters = Mutex<[String: Counter]>([:])
        let timers = Mutex<[String: Timer]>([:])
    }

    init(factory: any MetricsFactory, maxBodySize: Int, largerBodies: [String: Int] = [:]) {
        self.factory = factory
        self.maxBodySize = maxBodySize
        self.largerBodies = largerBodies
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var status: Int = 500
        defer {
            let route = context.endpointPath ?? "unmatched"
            let elapsed = ContinuousClock.now - start
            let method = request.method.rawValue
            let key = route + " " + method + " " + String(status)
            let counter = handles.counters.withLock { counters in
                if let counter = counters[key] { return counter }
                let counter = Counter(label: "streamhub_http_requests_total",
                                      dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
                counters[key] = counter
                return counter
            }
            counter.increment()
            let timer = handles.timers.withLock { timers in
                if let timer = timers[route] { return timer }
                let timer = Timer(label: "streamhub_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
                timers[route] = timer
                return timer
            }
            timer.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            if status >= 500 {
                context.logger.warning("request failed", metadata: ["status": "\(status)", "path": "\(request.uri.path)"])
            } else {
                context.logger.debug("request", metadata: ["status": "\(status)", "method": "\(request.method)", "path": "\(request.uri.path)"])
            }
        }
        let limit = largerBodies[request.uri.path].map { max($0, maxBodySize) } ?? maxBodySize
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            status = 413
            throw HubError.payloadTooLarge(limit: limit)
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
