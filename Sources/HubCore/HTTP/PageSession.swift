import Foundation
import HTTPTypes
import Hummingbird

/// The pages' session: a credential (a login JWT, an invite or a display link) kept in an HttpOnly,
/// SameSite=Lax cookie so that it leaves the address bar after the first visit and no script can read it.
///
/// A cookie is sent by the browser on its own, so a request it authenticates must prove it comes from one of
/// our pages: writes need the `X-StreamHub-Page` header (a cross-site form or image cannot set one) and
/// WebSockets an `Origin` of this server. Requests with an `Authorization` header are not affected.
public enum PageSession {
    public static let cookieName = "streamhub_session"
    public static let pageHeader = "X-StreamHub-Page"
    /// Browsers keep a cookie at most 400 days.
    public static let maxAge = 400 * 86_400

    /// The session cookie's value among the request's cookies, if any.
    public static func credential(cookieHeader: String?) -> String? {
        guard let cookieHeader, cookieHeader.utf8.count <= 16_384 else { return nil }
        for part in cookieHeader.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == cookieName else { continue }
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }

    /// The cookie to set for a credential that is valid for `seconds` more (capped at 400 days).
    public static func setCookie(_ credential: String, maxAge seconds: Int, secure: Bool) -> String {
        "\(cookieName)=\(credential); Path=/; Max-Age=\(max(0, min(seconds, maxAge))); HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// The header that removes the cookie.
    public static func clearCookie(secure: Bool) -> String {
        "\(cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    /// Whether an `Origin` header names the server the request was sent to (its `Host`). A missing `Origin`
    /// (a non-browser client) passes: it is the browser that sends cookies on its own.
    public static func isSameOrigin(origin: String?, host: String?) -> Bool {
        guard let origin else { return true }
        guard let host, let range = origin.range(of: "://") else { return false }
        return origin[range.upperBound...].lowercased() == host.lowercased()
    }

    /// Whether a request comes from one of our pages: it carries the page header (a cross-site form cannot
    /// send one) and, when the browser names its origin, that origin is this server.
    public static func isFromPage(_ request: Request) -> Bool {
        request.headers[HTTPField.Name(pageHeader)!] != nil && isSameOrigin(origin: request.headers[.origin], host: request.head.authority)
    }
}
