import HubCore
import Hummingbird
import NIOCore
import Prometheus

/// `GET /metrics`: every metric of the instance in the Prometheus text format.
struct MetricsController {
    let registry: PrometheusCollectorRegistry
    let access: OperationsAccess

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/metrics") { request, context in
            switch access.decide(request, context: context) {
            case .allowed: break
            case .badToken: throw HubError.unauthorized("the metrics token is wrong", code: "invalid_metrics_token")
            case .refused:
                throw HubError.forbidden("/metrics is readable from the configured networks (--metrics-networks) or with the metrics token (--metrics-token)")
            }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16 * 1024)
            registry.emit(into: &bytes)
            var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            response.headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        }
    }
}
