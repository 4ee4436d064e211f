import Crypto
import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import Registry
import StreamHub
import Testing

/// Builds HS256 (or unsigned) JWTs by hand, to prove the server refuses the ones it must.
enum HandmadeJWT {
    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func make(header: String = #"{"alg":"HS256","typ":"JWT"}"#, payload: String, secret: String?) -> String {
        let signingInput = base64URL(Data(header.utf8)) + "." + base64URL(Data(payload.utf8))
        guard let secret else { return signingInput + "." }
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return signingInput + "." + base64URL(Data(mac))
    }

    static func claims(sub: Int, exp: Double, role: String = "admin") -> String {
        #"{"sub":"\#(sub)","exp":\#(Int(exp)),"iat":\#(Int(exp) - 60),"jti":"\#(UUID().uuidString)","role":"\#(role)","email":"x@example.org"}"#
    }
}

@Suite struct AuthTests {
    let secret = String(repeating: "s", count: 32)  // HubConfiguration.testing's JWT secret

    @Test(arguments: TestDatabases.available)
    func loginVariantsAndMe(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            _ = try await RegistryAdmin.createUser(email: "Ada@Example.org", password: testPassword, role: "editor", bcryptCost: 4, database: app.database)
            let api = APIClient(client)
            for (path, body) in [("/api/v1/users/login", #"{"email":"ada@example.org","password":"\#(testPassword)"}"#),
                                 ("/api/v1/login", #"{"user":{"email":"ADA@example.org","password":"\#(testPassword)"}}"#)] {
                let response = try await api.post(path, body)
                #expect(response.status == .ok, "\(path): \(response.text)")
                let token = try #require(response.json["token"] as? String)
                #expect(response.json["expires_at"] is String)
                #expect((response.json["user"] as? [String: any Sendable])?["role"] as? String == "editor")
                let me = try await api.signedIn(token).get("/api/v1/users/me")
                #expect(me.json["email"] as? String == "Ada@Example.org")
            }
            let wrong = try await api.post("/api/v1/users/login", #"{"email":"ada@example.org","password":"wrong password"}"#)
            #expect(wrong.status == .unauthorized)
            #expect(wrong.errorCode == "invalid_credentials")
            let unknown = try await api.post("/api/v1/users/login", #"{"email":"nobody@example.org","password":"whatever1"}"#)
            #expect(unknown.status == .unauthorized)
        }
    }

    @Test func badTokensAreAlways401() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let good = try #require(team.admin.token)
            let parts = good.split(separator: ".").map(String.init)
            // The same signature over a payload that claims something else.
            let tamperedPayload = HandmadeJWT.base64URL(Data(HandmadeJWT.claims(sub: 1, exp: Date().timeIntervalSince1970 + 3600).utf8))
            let tokens: [(String, String)] = [
                ("expired", HandmadeJWT.make(payload: HandmadeJWT.claims(sub: 1, exp: Date().timeIntervalSince1970 - 10), secret: secret)),
                ("forged", HandmadeJWT.make(payload: HandmadeJWT.claims(sub: 1, exp: Date().timeIntervalSince1970 + 3600), secret: String(repeating: "x", count: 32))),
                ("alg none", HandmadeJWT.make(header: #"{"alg":"none","typ":"JWT"}"#, payload: HandmadeJWT.claims(sub: 1, exp: Date().timeIntervalSince1970 + 3600), secret: nil)),
                ("tampered", parts[0] + "." + tamperedPayload + "." + parts[2]),
                ("garbage", "not.a.token"),
                ("unknown key", "shk_" + String(repeating: "0", count: 64)),
                ("unknown user", HandmadeJWT.make(payload: HandmadeJWT.claims(sub: 999, exp: Date().timeIntervalSince1970 + 3600), secret: secret)),
            ]
            for (name, token) in tokens {
                let response = try await APIClient(client, token: token).get("/api/v1/streams")
                #expect(response.status == .unauthorized, "\(name)")
                #expect(response.errorCode == "invalid_token", "\(name)")
            }
            let basic = try await APIClient(client).get("/api/v1/streams", headers: [.authorization: "Basic YTpi"])
            #expect(basic.status == .unauthorized)
            // A correctly signed, unexpired token for a real user works: the refusals above are not blanket ones.
            let handmade = HandmadeJWT.make(payload: HandmadeJWT.claims(sub: 1, exp: Date().timeIntervalSince1970 + 3600), secret: secret)
            #expect(try await APIClient(client, token: handmade).get("/api/v1/streams").status == .ok)
        }
    }

    @Test(arguments: TestDatabases.available)
    func logoutRevokesTheToken(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            #expect(try await team.viewer.get("/api/v1/users/me").status == .ok)
            #expect(try await team.viewer.post("/api/v1/users/logout").status == .noContent)
            let after = try await team.viewer.get("/api/v1/users/me")
            #expect(after.status == .unauthorized)
            let stored = try await app.database.sql.raw("SELECT COUNT(*) AS n FROM revoked_tokens").first()?.decode(column: "n", as: Int.self)
            #expect(stored == 1, "the denylist survives restarts and reaches other instances")
            #expect(try await team.admin.get("/api/v1/users/me").status == .ok, "other tokens still work")
        }
    }

    @Test func failedLoginsAreRateLimitedPerIP() async throws {
        try await withTestApplication { app, client in
            _ = try await RegistryAdmin.createUser(email: "ada@example.org", password: testPassword, role: "viewer", bcryptCost: 4, database: app.database)
            let api = APIClient(client)
            for _ in 0..<5 {
                #expect(try await api.post("/api/v1/users/login", #"{"email":"ada@example.org","password":"nope nope"}"#).status == .unauthorized)
            }
            let limited = try await api.post("/api/v1/users/login", #"{"email":"ada@example.org","password":"\#(testPassword)"}"#)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.errorCode == "rate_limited")
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 >= 1)
        }
    }

    @Test func writesAreRateLimitedPerAccount() async throws {
        try await withTestApplication(configure: { $0.writeRateLimit = 3 }) { app, client in
            let team = try await Team.make(app, client)
            for index in 0..<3 {
                #expect(try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/r\#(index)"}"#).status == .created)
            }
            let limited = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/r9"}"#)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] != nil)
            #expect(try await team.editor.get("/api/v1/streams").status == .ok, "reads are not limited")
            #expect(try await team.admin.post("/api/v1/streams", #"{"link":"https://twitch.tv/r9"}"#).status == .created, "limits are per account")
        }
    }

    @Test func signupOnlyWhileTheFlagIsOn() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let body = #"{"email":"new@example.org","password":"long enough pw"}"#
            let closed = try await team.anonymous.post("/api/v1/users/signup", body)
            #expect(closed.status == .forbidden)
            #expect(try await team.editor.put("/api/v1/feature_flags/signups", #"{"enabled":true}"#).status == .forbidden)
            let flag = try await team.admin.put("/api/v1/feature_flags/signups", #"{"enabled":true}"#)
            #expect(flag.json["enabled"] as? Bool == true)
            #expect(flag.json["updated_by"] as? String == "user:admin@example.org")
            let open = try await team.anonymous.post("/api/v1/users/signup", body)
            #expect(open.status == .created)
            #expect((open.json["user"] as? [String: any Sendable])?["role"] as? String == "viewer")
            #expect(try await team.anonymous.post("/api/v1/users/signup", body).status == .conflict)
        }
    }

    @Test(arguments: TestDatabases.available)
    func apiKeysAuthenticateUntilRevoked(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            #expect(try await team.editor.post("/api/v1/api_keys", #"{"name":"checker","role":"editor"}"#).status == .forbidden)
            let created = try await team.admin.post("/api/v1/api_keys", #"{"name":"checker","role":"editor"}"#)
            #expect(created.status == .created)
            let key = try #require(created.json["key"] as? String)
            #expect(key.hasPrefix("shk_") && key.count == 68)
            let id = try #require((created.json["api_key"] as? [String: any Sendable])?["id"] as? Int)
            let stored = try await app.database.sql.raw("SELECT key_hash FROM api_keys").first()?.decode(column: "key_hash", as: String.self)
            #expect(stored != key && stored?.count == 64, "only the hash is stored")

            let byBearer = try await APIClient(client, token: key).post("/api/v1/streams", #"{"link":"https://twitch.tv/bykey"}"#)
            #expect(byBearer.status == .created)
            #expect(byBearer.json["posted_by"] as? String == "checker")
            let byHeader = try await APIClient(client).get("/api/v1/streams", headers: [HTTPField.Name("X-API-Key")!: key])
            #expect(byHeader.status == .ok)
            let listed = try await team.admin.get("/api/v1/api_keys")
            #expect(!listed.text.contains(key), "the key is never shown again")

            #expect(try await team.admin.delete("/api/v1/api_keys/\(id)").status == .noContent)
            let revoked = try await APIClient(client, token: key).get("/api/v1/streams")
            #expect(revoked.status == .unauthorized)
        }
    }

    @Test func adminsManageUsers() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            #expect(try await team.editor.get("/api/v1/users").status == .forbidden)
            let created = try await team.admin.post("/api/v1/users", #"{"email":"op@example.org","password":"operator pw 1","role":"viewer"}"#)
            #expect(created.status == .created)
            let id = try #require(created.json["id"] as? Int)
            let promoted = try await team.admin.patch("/api/v1/users/\(id)", #"{"role":"editor"}"#)
            #expect(promoted.json["role"] as? String == "editor")
            let login = try await APIClient(client).post("/api/v1/users/login", #"{"email":"op@example.org","password":"operator pw 1"}"#)
            let token = try #require(login.json["token"] as? String)
            #expect(try await APIClient(client, token: token).post("/api/v1/streams", #"{"link":"https://twitch.tv/op"}"#).status == .created)
            _ = try await team.admin.patch("/api/v1/users/\(id)", #"{"disabled":true}"#)
            #expect(try await APIClient(client, token: token).get("/api/v1/streams").status == .unauthorized, "a disabled user's token stops working")
            let list = try await team.admin.get("/api/v1/users")
            #expect((list.json["users"] as? [Any])?.count == 4)
            #expect(!list.text.contains("$2"), "no password hashes in answers")
        }
    }

    @Test func auditRecordsWhoChangedWhat() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let created = try await team.editor.post("/api/v1/streams", #"{"link":"https://twitch.tv/audited"}"#)
            let id = try #require(created.json["id"] as? Int)
            _ = try await team.editor.patch("/api/v1/streams/\(id)", #"{"city":"Boise"}"#)
            #expect(try await team.editor.get("/api/v1/audit").status == .forbidden)
            let audit = try await team.admin.get("/api/v1/audit?entity=stream&actor=user:editor@example.org")
            let entries = try #require(audit.json["entries"] as? [[String: any Sendable]])
            #expect(entries.count == 2)
            let update = try #require(entries.first)
            #expect(update["action"] as? String == "update")
            #expect(update["entity_id"] as? String == "\(id)")
            #expect((update["request_id"] as? String)?.count == 32)
            let city = (update["changes"] as? [String: any Sendable])?["city"] as? [String: any Sendable]
            #expect(city?["before"] is NSNull)
            #expect(city?["after"] as? String == "Boise")
            #expect((update["changes"] as? [String: any Sendable])?.count == 1, "only changed fields")
            let none = try await team.admin.get("/api/v1/audit?since=2999-01-01T00:00:00Z")
            #expect((none.json["entries"] as? [Any])?.isEmpty == true)
        }
    }
}
