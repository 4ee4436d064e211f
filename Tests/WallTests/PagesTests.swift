import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import HummingbirdTesting
import NIOCore
import StreamHub
import Testing
@testable import Wall

/// The pages' server side: who may open which page, the session cookie that a `?token=` becomes, the
/// checks a cookie-authenticated write must pass, and the files the pages are made of.
@Suite struct PagesTests {
    static let page = HTTPField.Name("X-StreamHub-Page")!

    /// The `streamhub_session=…` pair of a Set-Cookie header, to send back as a Cookie header.
    static func cookie(_ response: APIResponse) throws -> String {
        let header = try #require(response.headers[.setCookie])
        return String(try #require(header.split(separator: ";").first))
    }

    @Test func pagesAreStaticHTMLUnderAStrictPolicyWithTheirFiles() async throws {
        try await withTestApplication { app, client in
            let anonymous = APIClient(client)
            let front = try await anonymous.get("/")
            #expect(front.status == .ok && front.headers[.contentType] == "text/html; charset=utf-8")
            let csp = try #require(front.headers[.contentSecurityPolicy])
            #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("object-src 'none'"))
            #expect(front.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
            #expect(front.text.contains("/assets/home.js") && !front.text.contains("<script>"), "no inline script")

            for file in ["app.css", "api.js", "display.js", "control.js", "admin.js", "home.js", "player.js", "wallstate.js", "favicon.svg"] {
                let asset = try await anonymous.get("/assets/\(file)")
                #expect(asset.status == .ok, "\(file)")
                let etag = try #require(asset.headers[.eTag])
                #expect(try await anonymous.get("/assets/\(file)", headers: [.ifNoneMatch: etag]).status == .notModified)
            }
            #expect(try await anonymous.get("/assets/api.js").headers[.contentType] == "text/javascript; charset=utf-8")
            for bad in ["/assets/index.html", "/assets/nope.js", "/assets/..%2FPackage.swift", "/assets/%2e%2e%2fWallModule.swift"] {
                #expect(try await anonymous.get(bad).status == .notFound, "\(bad)")
            }

            // No users yet: the session says how to create the first admin (the words the log prints).
            let session = try await anonymous.get("/session")
            #expect(session.json["signed_in"] as? Bool == false)
            #expect((session.json["setup"] as? String)?.contains("streamhub user create") == true)
            _ = try await Team.make(app, client)
            #expect(try await anonymous.get("/session").json["setup"] is NSNull)
        }
    }

    @Test(arguments: TestDatabases.available)
    func aTokenInTheAddressBecomesAnHttpOnlyCookieAndThePagesFollowTheAPIsRules(backend: TestDatabases.Backend) async throws {
        try await withTestApplication(backend: backend) { app, client in
            let team = try await Team.make(app, client)
            let anonymous = APIClient(client)
            for name in ["alpha", "beta"] { _ = try await team.editor.post("/api/v1/walls", #"{"name":"\#(name)","columns":2,"rows":2}"#) }

            // Without a session, pages send you to sign in (and back).
            let redirect = try await anonymous.get("/wall/alpha/control")
            #expect(redirect.status == .seeOther && redirect.headers[.location] == "/?next=%2Fwall%2Falpha%2Fcontrol")
            #expect(try await anonymous.get("/admin").status == .seeOther)

            // A login token in the address: a cookie, and the same address without the token.
            let token = try #require(team.editor.token)
            let entry = try await anonymous.get("/wall/alpha?player=mse&token=\(token)")
            #expect(entry.status == .seeOther)
            #expect(entry.headers[.location] == "/wall/alpha?player=mse")
            let setCookie = try #require(entry.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Lax") && setCookie.contains("Path=/"))
            let maxAge = try #require(setCookie.split(separator: ";").first { $0.contains("Max-Age=") }.flatMap { Int($0.split(separator: "=")[1]) })
            #expect((86_000...86_400).contains(maxAge), "the cookie lives as long as the login token")
            let editorCookie: HTTPFields = [.cookie: try Self.cookie(entry)]
            for path in ["/", "/admin", "/wall/alpha", "/wall/alpha/control"] {
                #expect(try await anonymous.get(path, headers: editorCookie).status == .ok, "\(path)")
            }
            #expect(try await anonymous.get("/wall/nowhere", headers: editorCookie).status == .notFound)
            #expect(try await anonymous.get("/wall/Bad%20Name", headers: editorCookie).status == .notFound)
            let who = try await anonymous.get("/session", headers: editorCookie)
            #expect(who.json["role"] as? String == "editor" && who.json["name"] as? String == "editor@example.org")

            // A bad token is refused with a page that says so (escaped), and sets no cookie.
            let bad = try await anonymous.get("/wall/alpha?token=%3Cscript%3Ealert(1)%3C/script%3E")
            #expect(bad.status == .unauthorized && bad.headers[.setCookie] == nil)
            #expect(!bad.text.contains("<script>") && bad.text.contains("does not open StreamHub"))

            // The cookie works on the API; a write with it must come from a page of this server.
            let streamID = try #require(try await team.editor.post("/api/v1/streams", #"{"link":"https://example.org/a.m3u8"}"#).json["id"] as? Int)
            #expect(try await anonymous.get("/api/v1/walls/alpha", headers: editorCookie).status == .ok)
            let body = #"{"stream_id":\#(streamID)}"#
            let noHeader = try await anonymous.put("/api/v1/walls/alpha/cells/1", body, headers: editorCookie)
            #expect(noHeader.status == .forbidden && noHeader.text.contains("X-StreamHub-Page"))
            var foreign = editorCookie
            foreign[Self.page] = "1"
            foreign[.origin] = "https://evil.example"
            #expect(try await anonymous.put("/api/v1/walls/alpha/cells/1", body, headers: foreign).status == .forbidden)
            var fromPage = editorCookie
            fromPage[Self.page] = "1"
            #expect(try await anonymous.put("/api/v1/walls/alpha/cells/1", body, headers: fromPage).status == .ok)
            #expect(try await team.viewer.get("/api/v1/walls/alpha").json["version"] as? Int == 2, "only the page's write changed the wall")

            // A display link opens its wall's display only; the API refuses it the same things.
            let displayToken = try #require(try await team.editor.post("/api/v1/walls/alpha/displays").json["token"] as? String)
            let display = try await anonymous.get("/wall/alpha?token=\(displayToken)")
            #expect(display.status == .seeOther && display.headers[.location] == "/wall/alpha")
            let displayCookie: HTTPFields = [.cookie: try Self.cookie(display)]
            #expect(try await anonymous.get("/wall/alpha", headers: displayCookie).status == .ok)
            let control = try await anonymous.get("/wall/alpha/control", headers: displayCookie)
            #expect(control.status == .forbidden && control.text.contains("cannot open the control page"))
            #expect(try await anonymous.get("/wall/beta", headers: displayCookie).status == .forbidden)
            #expect(try await anonymous.get("/admin", headers: displayCookie).status == .forbidden)
            let sources = try await anonymous.get("/api/v1/walls/alpha/sources", headers: displayCookie)
            #expect(sources.status == .ok && (sources.json["streams"] as? [[String: Any]])?.first?["id"] as? Int == streamID)
            #expect(try await anonymous.get("/api/v1/walls/beta/sources", headers: displayCookie).status == .forbidden)
            var displayWrite = displayCookie
            displayWrite[Self.page] = "1"
            #expect(try await anonymous.put("/api/v1/walls/alpha/audio", #"{"cell":1}"#, headers: displayWrite).status == .forbidden)

            // A view-only invite opens the control page, and the server refuses its changes.
            let viewerInvite = try #require(try await team.editor.post("/api/v1/walls/alpha/invites", #"{"role":"viewer","max_uses":1}"#).json["token"] as? String)
            let invited = try await anonymous.get("/wall/alpha/control?token=\(viewerInvite)")
            #expect(invited.status == .seeOther)
            var inviteWrite: HTTPFields = [.cookie: try Self.cookie(invited)]
            #expect(try await anonymous.get("/wall/alpha/control", headers: inviteWrite).status == .ok)
            inviteWrite[Self.page] = "1"
            #expect(try await anonymous.delete("/api/v1/walls/alpha/cells/1", headers: inviteWrite).status == .forbidden)
            // Its one use is spent: opening it again is refused.
            let again = try await anonymous.get("/wall/alpha/control?token=\(viewerInvite)")
            #expect(again.status == .unauthorized && again.text.contains("used as many times"))

            // Revoked: the cookie stops working at once.
            let links = try #require(try await team.editor.get("/api/v1/walls/alpha/links").json["links"] as? [[String: Any]])
            let displayID = try #require(links.first { $0["kind"] as? String == "display" }?["id"] as? Int)
            #expect(try await team.editor.delete("/api/v1/walls/alpha/links/\(displayID)").status == .noContent)
            #expect(try await anonymous.get("/wall/alpha", headers: displayCookie).status == .seeOther, "back to signing in")
            #expect(try await anonymous.get("/api/v1/walls/alpha", headers: displayCookie).status == .unauthorized)

            // Signing out clears the cookie (and needs the page header).
            #expect(try await anonymous.delete("/session", headers: editorCookie).status == .forbidden)
            let out = try await anonymous.delete("/session", headers: fromPage)
            #expect(out.status == .noContent && out.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    @Test func sessionAndPresenceRejectBadInput() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            _ = try await team.editor.post("/api/v1/walls", #"{"name":"desk","columns":2,"rows":2}"#)
            let anonymous = APIClient(client)
            let page: HTTPFields = [Self.page: "1"]
            for (body, status) in [(#"{"token":"#, 400), (#"{"token":5}"#, 400), (#"{}"#, 400), (#"{"token":"nope"}"#, 401),
                                   (#"{"token":"\#(String(repeating: "a", count: 9000))"}"#, 413)] {
                let response = try await anonymous.post("/session", body, headers: page)
                #expect(response.status.code == status, "\(body.prefix(40)) → \(response.status) \(response.text)")
                #expect(response.headers[.setCookie] == nil)
            }
            #expect(try await anonymous.post("/session", #"{"token":"\#(team.editor.token!)"}"#).status == .forbidden, "without the page header")
            let started = try await anonymous.post("/session", #"{"token":"\#(team.editor.token!)"}"#, headers: page)
            #expect(started.status == .ok && started.json["role"] as? String == "editor" && started.headers[.setCookie] != nil)

            for (body, status) in [(#"{"session":"short"}"#, 422), (#"{"session":"0123456789abcdef<>"}"#, 422), (#"{"session":5}"#, 400),
                                   (#"{"session":"0123456789abcdef","state":"away"}"#, 422), (#"{"session":"0123456789abcdef","page":"admin"}"#, 422),
                                   (#"{"session":"#, 400)] {
                let response = try await team.viewer.post("/api/v1/walls/desk/presence", body)
                #expect(response.status.code == status, "\(body) → \(response.status) \(response.text)")
            }
            #expect(try await team.viewer.post("/api/v1/walls/nowhere/presence", #"{"session":"0123456789abcdef"}"#).status == .notFound)
            #expect(try await anonymous.post("/api/v1/walls/desk/presence", #"{"session":"0123456789abcdef"}"#).status == .unauthorized)

            // Presence is an event for the wall's pages; nothing is stored.
            let socket = WebSocketProbe(port: client.port!, path: "/events?types=wall_presence&token=\(team.editor.token!)")
            socket.send(#"{"subscribe":["wall_presence"]}"#)
            #expect(try await socket.nextJSON()["event"] as? String == "subscribed")
            #expect(try await team.viewer.post("/api/v1/walls/desk/presence", #"{"session":"0123456789abcdef","page":"control"}"#).status == .accepted)
            let event = try await socket.nextJSON()
            #expect(event["event"] as? String == "wall_presence" && event["wall"] as? String == "desk" && event["name"] as? String == "viewer@example.org")
            #expect(event["state"] as? String == "here" && event["ttl"] as? Int == 30)
        }
    }

    @Test func aDisplayReceivesTheChangesOfTheStreamsOnItsWallOnly() async throws {
        try await withTestApplication { app, client in
            let team = try await Team.make(app, client)
            let shown = try #require(try await team.editor.post("/api/v1/streams", #"{"link":"https://example.org/shown.m3u8"}"#).json["id"] as? Int)
            let fallback = try #require(try await team.editor.post("/api/v1/streams", #"{"link":"https://example.org/fallback.m3u8"}"#).json["id"] as? Int)
            let elsewhere = try #require(try await team.editor.post("/api/v1/streams", #"{"link":"https://example.org/elsewhere.m3u8"}"#).json["id"] as? Int)
            _ = try await team.editor.post("/api/v1/walls", #"{"name":"desk","columns":2,"rows":2}"#)
            let token = try #require(try await team.editor.post("/api/v1/walls/desk/displays").json["token"] as? String)
            let socket = WebSocketProbe(port: client.port!, path: "/events?token=\(token)")
            socket.send(#"{"subscribe":["*"]}"#)
            #expect(try await socket.nextJSON()["event"] as? String == "subscribed")
            _ = try await team.editor.put("/api/v1/walls/desk/cells/1", #"{"stream_id":\#(shown),"fallback_stream_id":\#(fallback)}"#)
            #expect(try await socket.nextJSON()["event"] as? String == "wall_changed")
            // The relay learns the wall's streams from that event; changes to them reach the display, others do not.
            _ = try await team.editor.patch("/api/v1/streams/\(elsewhere)", #"{"title":"not on the wall"}"#)
            _ = try await team.editor.patch("/api/v1/streams/\(fallback)", #"{"title":"the fallback"}"#)
            let relayed = try await socket.nextJSON()
            #expect(relayed["event"] as? String == "stream_updated")
            #expect((relayed["stream"] as? [String: Any])?["id"] as? Int == fallback, "\(relayed)")
            app.bus.publish(type: "test_sentinel", payload: ByteBuffer(string: "{}"), visibility: .everyone)
            #expect(try await socket.nextJSON()["event"] as? String == "test_sentinel", "nothing about other streams")
        }
    }
}
