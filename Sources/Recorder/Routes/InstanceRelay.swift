import AsyncHTTPClient
import HTTPTypes
import HubCore
import HubStore
import NIOCore
import NIOHTTP1

/// Passes a request on to the instance that has what it asks for (a recording's segment on that instance's
/// disk, a program's output where it renders). The instance's address comes from the instance directory
/// (written by the instances themselves, never by a client), and the request is marked
/// `X-StreamHub-Proxied`, so it is never passed on again.
public struct InstanceRelay: Sendable {
    public static let proxiedHeader = HTTPField.Name("X-StreamHub-Proxied")!

    let instances: InstanceDirectory
    let client: HTTPClient
    let instanceID: String

    public struct Answer: Sendable {
        public let status: HTTPResponseStatus
        public let headers: HTTPHeaders
        public let body: ByteBuffer
    }

    /// Whether `request` was passed on by another instance already.
    public static func isProxied(_ headers: HTTPFields) -> Bool {
        headers[proxiedHeader] != nil
    }

    /// Asks instance `owner` for `path` (with `headers`), taking at most `maxBytes` of its answer. `nil`: the
    /// owner is this instance or no live instance of that name is known. An owner that does not answer is a
    /// 502 (`owner_unreachable`) naming `what`.
    public func ask(_ owner: String, path: String, headers: [(String, String)] = [], maxBytes: Int, what: String) async throws -> Answer? {
        guard owner != instanceID, let address = await instances.address(of: owner) else { return nil }
        var upstream = HTTPClientRequest(url: address + path)
        upstream.headers.add(name: Self.proxiedHeader.rawName, value: instanceID)
        for (name, value) in headers { upstream.headers.add(name: name, value: value) }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(upstream, timeout: .seconds(10))
        } catch {
            throw HubError(.badGateway, code: "owner_unreachable", message: "\(what) (\(owner)) did not answer")
        }
        let body = try await response.body.collect(upTo: maxBytes)
        return Answer(status: response.status, headers: response.headers, body: body)
    }
}
