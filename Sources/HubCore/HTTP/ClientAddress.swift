import HTTPTypes
import Hummingbird
import Synchronization

/// The address of the client behind a request: the peer's, or — when the peer is a trusted proxy
/// (`--trusted-proxies`, e.g. nginx in front of several instances) — the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy (read from the right, where proxies append, so a
/// client cannot forge it). Login-failure limits and the overlay access log use it.
public enum ClientAddress {
    private static let trusted = Mutex<[IPNetwork]>([])

    /// Set once at startup.
    public static func trust(_ networks: [IPNetwork]) {
        trusted.withLock { $0 = networks }
    }

    public static func of(_ request: Request, peer: String?) -> String? {
        let networks = trusted.withLock { $0 }
        guard !networks.isEmpty, IPNetwork.any(networks, contains: peer) else { return peer }
        let hops = request.headers[values: .xForwardedFor].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() where !hop.isEmpty {
            if !IPNetwork.any(networks, contains: hop) { return hop }
        }
        return hops.first ?? peer
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
}

extension HubRequestContext {
    /// The client's address (see ``ClientAddress``).
    public func clientAddress(_ request: Request) -> String? {
        ClientAddress.of(request, peer: remoteAddress)
    }
}
