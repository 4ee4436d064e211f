import Foundation
import HTTPTypes
import HubCore
import HummingbirdTesting
import NIOCore
import Registry
import StreamHub

/// One answer of the API, with its body as text and (when it is JSON) parsed.
public struct APIResponse: Sendable {
    public let status: HTTPResponse.Status
    public let headers: HTTPFields
    public let text: String

    /// The body as a JSON object (empty when it is not one).
    public var json: [String: any Sendable] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: any Sendable]) ?? [:]
    }

    /// The body as a JSON array.
    public var array: [[String: any Sendable]] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: any Sendable]]) ?? []
    }

    /// The `code` of a `{"error":{"code","message"}}` body; `nil` when the body is not that shape.
    public var errorCode: String? {
        guard let error = json["error"] as? [String: any Sendable], let code = error["code"] as? String,
              let message = error["message"] as? String, !message.isEmpty else { return nil }
        return code
    }
}

/// Calls the running application's HTTP API as one client (optionally signed in).
public struct APIClient: Sendable {
    public let client: any TestClientProtocol
    public var token: String?

    public init(_ client: any TestClientProtocol, token: String? = nil) {
        self.client = client
        self.token = token
    }

    public func signedIn(_ token: String?) -> APIClient { APIClient(client, token: token) }

    @discardableResult
    public func call(_ method: HTTPRequest.Method, _ path: String, json: String? = nil, headers: HTTPFields = [:]) async throws -> APIResponse {
        var headers = headers
        if let token, headers[.authorization] == nil, headers[HTTPField.Name("X-API-Key")!] == nil { headers[.authorization] = "Bearer \(token)" }
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
        return APIResponse(status: response.status, headers: response.headers, text: String(buffer: response.body))
    }

    public func get(_ path: String, headers: HTTPFields = [:]) async throws -> APIResponse { try await call(.get, path, headers: headers) }
    public func post(_ path: String, _ json: String? = nil, headers: HTTPFields = [:]) async throws -> APIResponse { try await call(.post, path, json: json, headers: headers) }
    public func patch(_ path: String, _ json: String, headers: HTTPFields = [:]) async throws -> APIResponse { try await call(.patch, path, json: json, headers: headers) }
    public func put(_ path: String, _ json: String? = nil, headers: HTTPFields = [:]) async throws -> APIResponse { try await call(.put, path, json: json, headers: headers) }
    public func delete(_ path: String, headers: HTTPFields = [:]) async throws -> APIResponse { try await call(.delete, path, headers: headers) }

    /// POSTs raw bytes (a file upload) with `contentType`, or with no Content-Type at all.
    public func upload(_ path: String, _ bytes: [UInt8], contentType: String?) async throws -> APIResponse {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let contentType { headers[.contentType] = contentType }
        let response = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: bytes))
        return APIResponse(status: response.status, headers: response.headers, text: String(buffer: response.body))
    }
}

public let testPassword = "correct horse battery staple"

/// Creates a user directly in the database and signs them in; answers their token.
public func signIn(_ application: StreamHubApplication, _ client: any TestClientProtocol, email: String, role: String) async throws -> String {
    _ = try await RegistryAdmin.createUser(email: email, password: testPassword, role: role, bcryptCost: application.configuration.bcryptCost,
                                           database: application.database)
    let response = try await APIClient(client).post("/api/v1/users/login", #"{"email":"\#(email)","password":"\#(testPassword)"}"#)
    guard response.status == .ok, let token = response.json["token"] as? String else {
        throw TestFailure("login of \(email) failed: \(response.status) \(response.text)")
    }
    return token
}

/// An admin, an editor and a viewer, signed in.
public struct Team: Sendable {
    public let admin: APIClient
    public let editor: APIClient
    public let viewer: APIClient
    public let anonymous: APIClient

    public static func make(_ application: StreamHubApplication, _ client: any TestClientProtocol) async throws -> Team {
        Team(
            admin: APIClient(client, token: try await signIn(application, client, email: "admin@example.org", role: "admin")),
            editor: APIClient(client, token: try await signIn(application, client, email: "editor@example.org", role: "editor")),
            viewer: APIClient(client, token: try await signIn(application, client, email: "viewer@example.org", role: "viewer")),
            anonymous: APIClient(client))
    }
}
