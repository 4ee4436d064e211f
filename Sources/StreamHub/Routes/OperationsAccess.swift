import HubCore
import Hummingbird

/// Who may read `/metrics` and the details of `/health`: a caller from one of the configured networks
/// (loopback and private by default), or anyone presenting the metrics token as `Authorization: Bearer`.
/// Anonymous callers elsewhere get `/health`'s status and version only, and no metrics: both hold the
/// deployment's shape (instances, services, counts) that an outsider has no business reading.
struct OperationsAccess: Sendable {
    let token: ServiceKeyValidator
    let networks: [IPNetwork]

    init(configuration: HubConfiguration) {
        self.token = ServiceKeyValidator(keys: configuration.metricsToken.map { [$0] } ?? [])
        self.networks = configuration.metricsNetworks
    }

    enum Decision {
        case allowed
        /// A token was sent and it is wrong.
        case badToken
        case refused
    }

    func decide(_ request: Request, context: HubRequestContext) -> Decision {
        if let header = request.headers[.authorization], token.isConfigured {
            let parts = header.split(separator: " ", maxSplits: 1)
            return parts.count == 2 && parts[0].lowercased() == "bearer" && token.isValid(String(parts[1])) ? .allowed : .badToken
        }
        return IPNetwork.any(networks, contains: context.remoteAddress) ? .allowed : .refused
    }
}
