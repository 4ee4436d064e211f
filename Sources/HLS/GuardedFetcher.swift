import AsyncHTTPClient
import Foundation
import HubCore
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Fetches user-supplied URLs safely: every URL, and every redirect hop, passes the ``SourceURLGuard``
/// first; plain-HTTP requests connect to the very address the guard checked (so a DNS answer that
/// changes between check and connect cannot reach an internal address); bodies are size-limited; and
/// every request has a deadline.
public struct GuardedFetcher: Sendable {
    public struct Response: Sendable {
        public let status: Int
        public let body: ByteBuffer
        /// The URL answered, after redirects.
        public let url: String
        public let contentType: String?
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case refused(String)
        case tooManyRedirects
        case tooLarge(Int)
        case timedOut
        case transport(String)

        public var description: String {
            switch self {
            case .refused(let why): return "refused by the SSRF guard: \(why)"
            case .tooManyRedirects: return "more than 5 redirects"
            case .tooLarge(let limit): return "the answer is larger than \(limit) bytes"
            case .timedOut: return "timed out"
            case .transport(let what): return what
            }
        }
    }

    let client: HTTPClient
    let guardrail: SourceURLGuard
    let userAgent: String
    /// The server's own HLS, read from disk (`program://…`); nil: none.
    let local: LocalSources?

    public init(client: HTTPClient, guardrail: SourceURLGuard, userAgent: String = "StreamHub", local: LocalSources? = nil) {
        self.client = client
        self.guardrail = guardrail
        self.userAgent = userAgent
        self.local = local
    }

    /// A client for guarded fetching: no automatic redirects (the fetcher follows them itself, checking
    /// each), small connection pool per host, no decompression (sizes stay honest).
    public static func makeClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(30)),
                                                     decompression: .disabled)
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// GETs `url`, following up to 5 redirects, and reads at most `limit` bytes of the answer.
    public func get(_ url: String, limit: Int, deadline: ContinuousClock.Instant) async throws(Failure) -> Response {
        if let local, let path = local.path(for: url) { return try local.read(path, url: url, limit: limit) }
        var current = url
        for _ in 0...5 {
            let checked: SourceURLGuard.CheckedURL
            do { checked = try await guardrail.check(current) } catch { throw .refused(error.description) }
            let target = Self.pinned(checked)
            var request = HTTPClientRequest(url: target)
            request.headers.add(name: "User-Agent", value: userAgent)
            request.headers.add(name: "Accept", value: "*/*")
            if target != checked.url {
                request.headers.replaceOrAdd(name: "Host", value: checked.port == 80 ? checked.host : "\(checked.host):\(checked.port)")
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw .timedOut }
            let timeout = TimeAmount.nanoseconds(Int64(remaining.components.seconds) * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000)
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: timeout)
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
                throw .timedOut
            } catch {
                throw .transport(Self.describe(error))
            }
            if (300...399).contains(Int(response.status.code)), let location = response.headers.first(name: "Location") {
                guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteString else { throw .transport("a redirect to an invalid URL") }
                current = next
                continue
            }
            let body: ByteBuffer
            do {
                body = try await response.body.collect(upTo: limit)
            } catch is NIOTooManyBytesError {
                throw .tooLarge(limit)
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
                throw .timedOut
            } catch {
                throw .transport(Self.describe(error))
            }
            return Response(status: Int(response.status.code), body: body, url: current, contentType: response.headers.first(name: "Content-Type"))
        }
        throw .tooManyRedirects
    }

    /// The URL to connect to: for plain HTTP, the checked address itself (with the path and query).
    static func pinned(_ checked: SourceURLGuard.CheckedURL) -> String {
        guard checked.scheme == "http", let address = checked.addresses.first, var components = URLComponents(string: checked.url) else { return checked.url }
        switch address {
        case .v4: components.host = address.description
        case .v6: components.percentEncodedHost = "[" + address.description + "]"
        }
        return components.string ?? checked.url
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "HTTP client error: \(error)" }
        return "\(error)"
    }
}

/// Shuts an HTTP client (a ``GuardedFetcher``'s, say) down with the application.
public struct HTTPClientCloser: Service {
    let client: HTTPClient

    public init(client: HTTPClient) {
        self.client = client
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
