import Foundation
import HubCore
import HTTPTypes
import HummingbirdCore
import Hummingbird
import NIOCore
import Registry

/// The pages people use: the front door (`/`, sign in and the home page), the wall display (`/wall/{name}`),
/// its control page (`/wall/{name}/control`) and the admin page (`/admin`), with their files under
/// `/assets/` and the session they share (`/session`).
///
/// The HTML is static: every user-supplied string reaches the page through the JSON API and is set as text,
/// never as markup. The server decides who may open which page with the same rules as the API, and the API
/// decides again on every call.
struct PagesController {
    let assets: WebAssets
    let access: Access
    let links: WallLinks
    let store: WallStore
    let registry: RegistryModule
    let programPages: ProgramPages

    /// What the pages may load: their own scripts and styles only, media from this server and from the
    /// HLS links of the registry, sandboxed frames for page tiles, and WebSockets back to this server.
    static let contentSecurityPolicy = policy(connect: "'self'")
    /// The display may also fetch HLS from other servers (its MediaSource player, where the browser has no native HLS).
    static let displayPolicy = policy(connect: "'self' http: https:")

    static func policy(connect: String) -> String {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            + "media-src 'self' blob: http: https:; connect-src \(connect); frame-src http: https:; object-src 'none'; "
            + "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    }

    enum Page: String {
        case home = "index.html", admin = "admin.html", display = "display.html", control = "control.html", program = "program.html"
    }

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/") { request, context in try await page(.home, wall: nil, request: request, context: context) }
        router.get("/admin") { request, context in try await page(.admin, wall: nil, request: request, context: context) }
        router.get("/wall/:name") { request, context in
            try await page(.display, wall: context.parameters.get("name") ?? "", request: request, context: context)
        }
        router.get("/wall/:name/control") { request, context in
            try await page(.control, wall: context.parameters.get("name") ?? "", request: request, context: context)
        }
        router.get("/programs/:name/control") { request, context in
            try await page(.program, wall: nil, program: context.parameters.get("name") ?? "", request: request, context: context)
        }
        router.get("/assets/:file") { request, context in
            guard let name = context.parameters.get("file"), !name.hasSuffix(".html"), let asset = assets.files[name] else {
                throw HubError.notFound("no such file")
            }
            return serve(asset, request: request)
        }
        router.get("/session") { request, _ in
            jsonResponse(try await sessionJSON(try await principal(of: request)), headers: [.cacheControl: "no-store"])
        }
        router.post("/session") { request, _ in
            try Self.requirePage(request)
            struct Body: Decodable { let token: String }
            let body = try await request.decodeJSON(as: Body.self, limit: 8 * 1024)
            let (principal, maxAge) = try await startSession(body.token)
            var response = jsonResponse(try await sessionJSON(principal), headers: [.cacheControl: "no-store"])
            response.headers[.setCookie] = PageSession.setCookie(body.token, maxAge: maxAge, secure: Self.isSecure(request))
            return response
        }
        router.delete("/session") { request, _ in
            try Self.requirePage(request)
            var response = Response(status: .noContent)
            response.headers[.setCookie] = PageSession.clearCookie(secure: Self.isSecure(request))
            response.headers[.cacheControl] = "no-store"
            return response
        }
    }

    // MARK: Pages

    func page(_ page: Page, wall: String?, program: String? = nil, request: Request, context: HubRequestContext) async throws -> Response {
        if let wall, !Wall.isValidName(wall) {
            return message(.notFound, title: "No such wall", text: "There is no wall at this address.")
        }
        let programExists = programPages.exists.withLock { $0 }
        if let program, !Wall.isValidName(program) || programExists == nil {
            return message(.notFound, title: "No such program", text: "There is no program at this address.")
        }
        // A token in the address (a login, invite or display link) becomes the session, then leaves the address bar.
        if let token = request.uri.queryParameters["token"] {
            do {
                let (_, maxAge) = try await startSession(String(token))
                var response = Response(status: .seeOther)
                response.headers[.location] = Self.withoutToken(request.uri)
                response.headers[.setCookie] = PageSession.setCookie(String(token), maxAge: maxAge, secure: Self.isSecure(request))
                response.headers[.cacheControl] = "no-store"
                response.headers[.referrerPolicy] = "no-referrer"
                return response
            } catch let error as HubError {
                return message(error.status, title: "This link does not open StreamHub", text: error.message)
            }
        }
        let principal = try await principal(of: request)
        if page != .home {
            guard let principal else {
                var response = Response(status: .seeOther)
                response.headers[.location] = "/?next=" + (request.uri.path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/")
                response.headers[.cacheControl] = "no-store"
                return response
            }
            if let refusal = refusal(of: principal, for: page, wall: wall) {
                return message(.forbidden, title: "Not for this link", text: refusal)
            }
            if let wall, (try? await store.get(wall)) == nil {
                return message(.notFound, title: "No such wall", text: "There is no wall named \(wall).")
            }
            if let program, let programExists, try await !programExists(program) {
                return message(.notFound, title: "No such program", text: "There is no program named \(program).")
            }
        }
        guard let asset = assets.files[page.rawValue] else { throw HubError.internalError() }
        var response = serve(asset, request: request)
        response.headers[.contentSecurityPolicy] = page == .display ? Self.displayPolicy : Self.contentSecurityPolicy
        response.headers[.referrerPolicy] = "no-referrer"
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }

    /// Why this caller may not open the page, or `nil` when it may. The API refuses the same callers.
    func refusal(of principal: Principal, for page: Page, wall: String?) -> String? {
        if let scope = principal.scope {
            guard page != .program, let wall, scope.wall == wall else { return "This link opens the wall \(scope.wall) only." }
            if page == .control && scope.access == WallLinks.Access.display.rawValue {
                return "A display link shows the wall; it cannot open the control page."
            }
            return nil
        }
        guard let role = Role(rawValue: principal.role), role >= .viewer else { return "Your account cannot open this page." }
        return nil
    }

    // MARK: Sessions

    /// The principal of the request's session cookie, if it is (still) valid.
    func principal(of request: Request) async throws -> Principal? {
        guard let credential = PageSession.credential(cookieHeader: request.headers[.cookie]) else { return nil }
        return try? await access.principal(for: credential)
    }

    /// Checks a credential for a page session and counts the use of an invite; answers how long the cookie
    /// may live (until the credential expires).
    func startSession(_ token: String) async throws -> (Principal, Int) {
        let principal = try await access.principal(for: token)
        if principal.kind == .wallLink {
            guard let link = try await links.use(token) else {
                throw HubError.unauthorized("this invite has been used as many times as it allows", code: "invite_used_up")
            }
            return (principal, link.expiresAt.map { Int($0 - Timestamp.now()) } ?? PageSession.maxAge)
        }
        return (principal, Self.expiry(ofJWT: token).map { Int($0 - Timestamp.now()) } ?? 86_400)
    }

    func sessionJSON(_ principal: Principal?) async throws -> String {
        guard let principal else {
            let hasUsers = try await registry.hasUsers()
            return JSONText.object([
                ("signed_in", .bool(false)),
                ("setup", hasUsers ? .null : .string(RegistryModule.firstAdminHint)),
            ])
        }
        let scope = principal.scope.map { scope in
            JSONText.Value.raw(JSONText.object([
                ("wall", .string(scope.wall)), ("access", .string(scope.access)),
                ("expires_at", Timestamp.jsonValue(scope.expiresAt)),
            ]))
        }
        return JSONText.object([
            ("signed_in", .bool(true)), ("kind", .string(principal.kind.rawValue)), ("id", .string(principal.id)),
            ("role", .string(principal.role)), ("name", .string(principal.name)), ("scope", scope ?? .null),
        ])
    }

    /// The `exp` claim of a JWT, read without verifying it (the caller verified it already).
    static func expiry(ofJWT token: String) -> Double? {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return nil }
        var payload = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        payload += String(repeating: "=", count: (4 - payload.count % 4) % 4)
        guard let data = Data(base64Encoded: payload), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return (object["exp"] as? NSNumber)?.doubleValue
    }

    /// A cookie-authenticated write must come from one of our pages; `/session` asks the same of every write.
    static func requirePage(_ request: Request) throws {
        guard PageSession.isFromPage(request) else { throw HubError.forbidden("this request must come from a StreamHub page (\(PageSession.pageHeader) header, same origin)") }
    }

    static func isSecure(_ request: Request) -> Bool {
        request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    /// The request's path and query without `token`.
    static func withoutToken(_ uri: URI) -> String {
        let kept = (uri.query ?? "").split(separator: "&").filter { !$0.hasPrefix("token=") && $0 != "token" }
        return uri.path + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&"))
    }

    // MARK: Responses

    func serve(_ asset: WebAssets.Asset, request: Request) -> Response {
        var headers: HTTPFields = [.contentType: asset.contentType, .eTag: asset.etag, .cacheControl: "no-cache"]
        headers[.xContentTypeOptions] = "nosniff"
        if request.headers[.ifNoneMatch] == asset.etag {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }

    /// A small page that says what went wrong, in the pages' look; every text is escaped.
    func message(_ status: HTTPResponse.Status, title: String, text: String) -> Response {
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
            <title>\(HTML.escape(title)) · StreamHub</title><link rel="stylesheet" href="/assets/app.css"></head>
            <body class="page"><main class="narrow"><h1 class="brand">StreamHub</h1><section class="card"><h2>\(HTML.escape(title))</h2>
            <p>\(HTML.escape(text))</p><p><a class="button" href="/">Go to the front page</a></p></section></main></body></html>
            """
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"]
        headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        headers[.referrerPolicy] = "no-referrer"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

extension HTTPField.Name {
    static let referrerPolicy = Self("Referrer-Policy")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
}
