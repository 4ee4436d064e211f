import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import Registry
import StreamHub
import Testing

/// Every registry endpoint against malformed, mistyped, oversized, out-of-range and unauthorised input:
/// each answers the JSON error with the right status, and the data is exactly as before.
@Suite struct BadInputTests {
    enum Who: Sendable { case admin, editor, viewer, nobody }

    struct Case: Sendable, CustomTestStringConvertible {
        let method: HTTPRequest.Method
        let path: String
        let body: String?
        let who: Who
        let status: Int
        let code: String?
        var testDescription: String { "\(method) \(path) \(body?.prefix(40) ?? "") → \(status)" }

        init(_ method: HTTPRequest.Method, _ path: String, _ body: String, as who: Who = .admin, _ status: Int, _ code: String? = nil) {
            self.method = method
            self.path = path
            self.body = body
            self.who = who
            self.status = status
            self.code = code
        }

        init(_ method: HTTPRequest.Method, _ path: String, as who: Who = .admin, _ status: Int, _ code: String? = nil) {
            self.method = method
            self.path = path
            self.body = nil
            self.who = who
            self.status = status
            self.code = code
        }
    }

    static let long = String(repeating: "a", count: 5000)
    static let huge = "{\"link\":\"https://twitch.tv/x\",\"notes\":\"" + String(repeating: "n", count: 70_000) + "\"}"

    static let cases: [Case] = [
        // Malformed JSON and wrong shapes.
        Case(.post, "/api/v1/streams", "{not json", 400, "invalid_json"),
        Case(.post, "/api/v1/streams", "", 400, "invalid_json"),
        Case(.post, "/api/v1/streams", "[1,2]", 400, "invalid_json"),
        Case(.post, "/api/v1/streams", #"{"link":42}"#, 400, "invalid_json"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","is_pinned":"yes"}"#, 400, "invalid_json"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","streamer_id":"one"}"#, 400, "invalid_json"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","notes":{"a":1}}"#, 400, "invalid_json"),
        // Missing fields, invalid values, over-long strings.
        Case(.post, "/api/v1/streams", #"{"source":"nobody"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"javascript:alert(1)"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"ftp://example.com/live"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"file:///etc/passwd"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","status":"sleeping"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","kind":"hologram"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","orientation":"diagonal"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","source":"\#(long)"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","last_live_at":"last tuesday"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/a","streamer_id":999}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", #"{"link":"https://\#(long).com"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streams", huge, 413, "payload_too_large"),
        Case(.patch, "/api/v1/streams/1", #"{"link":""}"#, 422, "validation_failed"),
        Case(.patch, "/api/v1/streams/1", #"{"status":"LIVEISH"}"#, 422, "validation_failed"),
        Case(.patch, "/api/v1/streams/1", #"{"title":"\#(long)"}"#, 422, "validation_failed"),
        Case(.patch, "/api/v1/streams/1", "{", 400, "invalid_json"),
        Case(.patch, "/api/v1/streams/1", #"{"link":"https://twitch.tv/second"}"#, 409, "duplicate_link"),
        // Unknown ids.
        Case(.get, "/api/v1/streams/999", 404, "not_found"),
        Case(.get, "/api/v1/streams/abc", 404, "not_found"),
        Case(.get, "/api/v1/streams/-1", 404, "not_found"),
        Case(.patch, "/api/v1/streams/999", #"{"title":"x"}"#, 404, "not_found"),
        Case(.delete, "/api/v1/streams/999", 404, "not_found"),
        Case(.put, "/api/v1/streams/999/pin", 404, "not_found"),
        Case(.post, "/api/v1/streams/999/archive", 404, "not_found"),
        Case(.get, "/api/v1/streamers/999", 404, "not_found"),
        Case(.patch, "/api/v1/users/999", #"{"role":"editor"}"#, 404, "not_found"),
        Case(.delete, "/api/v1/api_keys/999", 404, "not_found"),
        // Query parameters.
        Case(.get, "/api/v1/streams?status=sleeping", 422, "validation_failed"),
        Case(.get, "/api/v1/streams?per_page=101", 422, "validation_failed"),
        Case(.get, "/api/v1/streams?page=0", 422, "validation_failed"),
        Case(.get, "/api/v1/streams?is_pinned=maybe", 422, "validation_failed"),
        Case(.get, "/api/v1/streams?sort=password_hash", 422, "validation_failed"),
        Case(.get, "/api/v1/streams?format=xml", 422, "validation_failed"),
        Case(.get, "/api/v1/audit?since=whenever", 422, "validation_failed"),
        Case(.get, "/api/v1/cable?since=-4", 422, "validation_failed"),
        // Roles.
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/v"}"#, as: .viewer, 403, "forbidden"),
        Case(.patch, "/api/v1/streams/1", #"{"title":"x"}"#, as: .viewer, 403, "forbidden"),
        Case(.delete, "/api/v1/streams/1", as: .editor, 403, "forbidden"),
        Case(.delete, "/api/v1/streamers/1", as: .editor, 403, "forbidden"),
        Case(.post, "/api/v1/streamers/1/merge", #"{"from_id":2}"#, as: .editor, 403, "forbidden"),
        Case(.get, "/api/v1/users", as: .editor, 403, "forbidden"),
        Case(.post, "/api/v1/users", #"{"email":"e@x.org","password":"12345678"}"#, as: .editor, 403, "forbidden"),
        Case(.post, "/api/v1/api_keys", #"{"name":"x"}"#, as: .editor, 403, "forbidden"),
        Case(.put, "/api/v1/feature_flags/signups", #"{"enabled":true}"#, as: .viewer, 403, "forbidden"),
        Case(.get, "/api/v1/audit", as: .viewer, 403, "forbidden"),
        Case(.get, "/api/v1/streams", as: .nobody, 401, "unauthenticated"),
        Case(.post, "/api/v1/streams", #"{"link":"https://twitch.tv/n"}"#, as: .nobody, 401, "unauthenticated"),
        Case(.get, "/api/v1/feature_flags", as: .nobody, 401, "unauthenticated"),
        // Users, keys, flags, streamers.
        Case(.post, "/api/v1/users", #"{"email":"not-an-email","password":"long enough"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/users", #"{"email":"a@b.org","password":"short"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/users", #"{"email":"a@b.org","password":"\#(String(repeating: "p", count: 80))"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/users", #"{"email":"a@b.org","password":"long enough","role":"root"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/users", #"{"email":"admin@example.org","password":"long enough"}"#, 409, "email_taken"),
        Case(.post, "/api/v1/users", #"{"email":["a@b.org"],"password":"long enough"}"#, 400, "invalid_json"),
        Case(.patch, "/api/v1/users/1", #"{"role":"viewer"}"#, 422, "validation_failed"),
        Case(.patch, "/api/v1/users/2", #"{"role":"emperor"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/api_keys", #"{"name":""}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/api_keys", #"{"name":"ok","role":"god"}"#, 422, "validation_failed"),
        Case(.put, "/api/v1/feature_flags/Bad-Name", #"{"enabled":true}"#, 422, "validation_failed"),
        Case(.put, "/api/v1/feature_flags/signups", #"{"enabled":"yes"}"#, 400, "invalid_json"),
        Case(.put, "/api/v1/feature_flags/signups", #"{}"#, 400, "invalid_json"),
        Case(.post, "/api/v1/streamers", #"{"notes":"no name"}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streamers", #"{"name":"A","accounts":[{"platform":"myspace","handle":"a"}]}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streamers", #"{"name":"A","accounts":[{"platform":"twitch","handle":"a","link":"gopher://x"}]}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streamers/1/merge", #"{"from_id":1}"#, 422, "validation_failed"),
        Case(.post, "/api/v1/streamers/1/merge", #"{"from_id":999}"#, 404, "not_found"),
        Case(.post, "/api/v1/users/login", #"{"email":"admin@example.org"}"#, as: .nobody, 400, "invalid_json"),
        Case(.post, "/api/v1/users/login", #"{"email":"admin@example.org","password":12345678}"#, as: .nobody, 400, "invalid_json"),
        Case(.post, "/api/v1/users/signup", #"{"email":"s@x.org","password":"long enough"}"#, as: .nobody, 403, "forbidden"),
        Case(.post, "/api/v1/users/logout", as: .nobody, 401, "unauthenticated"),
    ]

    /// Everything a client could observe of the data, plus the audit log's size.
    static func snapshot(_ app: StreamHubApplication, _ admin: APIClient) async throws -> String {
        var parts: [String] = []
        for path in ["/api/v1/streams?is_archived=any&per_page=100&sort=id", "/api/v1/users", "/api/v1/api_keys", "/api/v1/feature_flags", "/api/v1/streamers"] {
            parts.append(try await admin.get(path).text)
        }
        let audit = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM audit_log").first()?.decode(column: "n", as: Int.self) ?? -1
        let changes = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM registry_changes").first()?.decode(column: "n", as: Int.self) ?? -1
        return parts.joined(separator: "\n") + "\naudit=\(audit) changes=\(changes)"
    }

    @Test(arguments: TestDatabases.available)
    func everyBadRequestIsRefusedAndChangesNothing(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            #expect(try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/first"}"#).status == .created)
            #expect(try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/second"}"#).status == .created)
            #expect(try await team.editor.post("/api/v1/streamers", #"{"name":"Someone"}"#).status == .created)
            let before = try await Self.snapshot(app, team.admin)
            for test in Self.cases {
                let api: APIClient
                switch test.who {
                case .admin: api = team.admin
                case .editor: api = team.editor
                case .viewer: api = team.viewer
                case .nobody: api = team.anonymous
                }
                let response = try await api.call(test.method, test.path, json: test.body)
                #expect(Int(response.status.code) == test.status, "\(test.testDescription): got \(response.status.code) \(response.text.prefix(200))")
                if let code = test.code {
                    #expect(response.errorCode == code, "\(test.testDescription): \(response.text.prefix(200))")
                }
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, "\(test.testDescription)")
            }
            let after = try await Self.snapshot(app, team.admin)
            #expect(before == after, "a refused request changed the data")
        }
    }
}
