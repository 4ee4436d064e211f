/// What a page says about itself every few seconds on a presence endpoint (`POST …/presence`): a random
/// session id, which page it is, and whether it is `here` or `gone`. Nothing is stored; listeners drop an
/// entry after its TTL.
public struct PresenceReport: Decodable, Sendable {
    public let session: String
    public let page: String?
    public let state: String?

    /// Seconds a `here` lasts without being said again.
    public static let ttl = 30

    /// The checked session, page (one of `pages`, the first by default) and state.
    public func validated(pages: [String]) throws -> (session: String, page: String, state: String) {
        guard (16...64).contains(session.utf8.count),
              session.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || $0 == 45 })
        else { throw HubError.validation("session must be 16-64 letters, digits or '-'") }
        let page = page ?? pages[0]
        guard pages.contains(page) else { throw HubError.validation("page must be " + pages.joined(separator: " or ")) }
        let state = state ?? "here"
        guard ["here", "gone"].contains(state) else { throw HubError.validation("state must be here or gone") }
        return (session, page, state)
    }
}
