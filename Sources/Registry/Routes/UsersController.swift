import Foundation
import HubCore
import HubStore
import Hummingbird
import NIOCore
import SQLKit

/// Sign-in, sign-out, sign-up and user management.
struct UsersController {
    let service: RegistryService
    let access: Access
    let flags: FeatureFlags
    let loginFailures: RateLimiter

    struct Credentials: Decodable {
        let email: String
        let password: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            if container.contains(AnyKey("user")) {
                let user = try container.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("user"))
                email = try user.decode(String.self, forKey: AnyKey("email"))
                password = try user.decode(String.self, forKey: AnyKey("password"))
            } else {
                email = try container.decode(String.self, forKey: AnyKey("email"))
                password = try container.decode(String.self, forKey: AnyKey("password"))
            }
        }
    }

    struct NewUser: Decodable {
        let email: String
        let password: String
        let role: String?
    }

    struct UserChange: Decodable {
        let role: String?
        let disabled: Bool?
        let password: String?
    }

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.post("login") { request, context in try await login(request, context: context) }
        group.post("users/login") { request, context in try await login(request, context: context) }
        group.post("users/logout") { request, context in try await logout(request, context: context) }
        group.get("users/me") { _, context in
            let principal = try context.require(.viewer)
            guard principal.kind == .user, let id = Int64(principal.id), let user = try await access.user(id: id, fresh: true) else {
                return jsonResponse(JSONText.object([("kind", .string(principal.kind.rawValue)), ("name", .string(principal.name)), ("role", .string(principal.role))]))
            }
            return jsonResponse(user.json)
        }
        group.post("users/signup") { request, context in try await signup(request, context: context) }
        group.get("users") { request, context in
            try context.require(.admin)
            let paging = try Paging(request.queryDictionary, defaultPerPage: 100, maxPerPage: 1000)
            let users = try await AccountStore.users(on: service.database.sql, limit: paging.perPage, offset: paging.offset)
            let total = try await AccountStore.userCount(on: service.database.sql)
            return jsonResponse("{\"users\":[" + users.map(\.json).joined(separator: ",") + "],\"meta\":" + paging.meta(total: total) + "}")
        }
        group.post("users") { request, context in
            let principal = try context.require(.admin)
            let body = try await request.decodeJSON(as: NewUser.self, limit: registryBodyLimit)
            let user = try await createUser(email: body.email, password: body.password, roleLabel: body.role ?? "viewer",
                                            writer: .init(principal: principal, requestID: context.requestID))
            return jsonResponse(user.json, status: .created, headers: [.location: "/api/v1/users/\(user.id)"])
        }
        group.get("users/:id") { _, context in
            try context.require(.admin)
            let id = try context.id(entity: "user")
            guard let user = try await AccountStore.user(id: id, on: service.database.sql) else { throw HubError.notFound("no user with id \(id)") }
            return jsonResponse(user.json)
        }
        group.patch("users/:id") { request, context in try await change(request, context: context) }
    }

    func login(_ request: Request, context: HubRequestContext) async throws -> Response {
        let ip = context.clientAddress(request) ?? "unknown"
        if let retry = loginFailures.blocked(ip) {
            throw HubError.tooManyRequests(retryAfterSeconds: retry)
        }
        let credentials = try await request.decodeJSON(as: Credentials.self, limit: 16 * 1024)
        let found = try await AccountStore.credentials(email: credentials.email, on: service.database.sql)
        let valid = try await access.passwords.verify(credentials.password, hash: found?.1 ?? access.decoyHash)
        guard valid, let (user, _) = found, !user.disabled else {
            _ = loginFailures.take(ip)
            context.logger.notice("failed login", metadata: ["ip": "\(ip)"])
            throw HubError.unauthorized("wrong email or password", code: "invalid_credentials")
        }
        loginFailures.reset(ip)
        return try await tokenResponse(for: user, status: .ok)
    }

    func tokenResponse(for user: UserRecord, status: HTTPResponse.Status) async throws -> Response {
        let issued = try await access.tokens.issue(userID: user.id, email: user.email, role: user.role)
        return jsonResponse(JSONText.object([
            ("token", .string(issued.token)), ("expires_at", .string(Timestamp.iso8601(issued.expiresAt))), ("user", .raw(user.json)),
        ]), status: status)
    }

    func logout(_ request: Request, context: HubRequestContext) async throws -> Response {
        let principal = try context.require(.viewer)
        guard principal.kind == .user, let header = request.headers[.authorization],
              let token = header.split(separator: " ", maxSplits: 1).last.map(String.init),
              let claims = await access.tokens.verify(token)
        else { throw HubError.badRequest("only a login token (Authorization: Bearer <token>) can be logged out", code: "not_a_token") }
        let expires = claims.exp.value.timeIntervalSince1970
        try await access.revoke(jti: claims.jti.value, expiresAt: expires)
        service.bus.publish(type: RegistryEventType.tokenRevoked, payload: ByteBuffer(string: JSONText.object([
            ("jti", .string(claims.jti.value)), ("expires_at", .double(expires)),
        ])), visibility: .nobody)
        return Response(status: .noContent)
    }

    func signup(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard try await flags.isEnabled("signups") else {
            throw HubError.forbidden("sign-ups are closed; ask an admin for an account")
        }
        let ip = context.clientAddress(request) ?? "unknown"
        if let retry = loginFailures.blocked(ip) { throw HubError.tooManyRequests(retryAfterSeconds: retry) }
        let body = try await request.decodeJSON(as: NewUser.self, limit: 16 * 1024)
        let user = try await createUser(email: body.email, password: body.password, roleLabel: "viewer",
                                        writer: .init(principal: Principal(kind: .user, id: "signup", role: "viewer", name: "signup"), requestID: context.requestID))
        return try await tokenResponse(for: user, status: .created)
    }

    func createUser(email: String, password: String, roleLabel: String, writer: RegistryService.Writer) async throws -> UserRecord {
        guard let role = Role(label: roleLabel) else { throw HubError.validation("role must be \(Role.choices)") }
        _ = try AccountStore.validateEmail(email)
        try Passwords.validate(password)
        let hash = try await access.passwords.hash(password)
        return try await service.database.transaction { db in
            let user = try await AccountStore.createUser(email: email, passwordHash: hash, role: role, on: db)
            try await AuditLog.record(writer.entry("create", entity: "user", id: user.id), before: nil,
                                      after: ["email": .string(user.email), "role": .string(role.rawValue)], on: db)
            return user
        }
    }

    func change(_ request: Request, context: HubRequestContext) async throws -> Response {
        let principal = try context.require(.admin)
        let id = try context.id(entity: "user")
        let body = try await request.decodeJSON(as: UserChange.self, limit: registryBodyLimit)
        let role = try body.role.map { label -> Role in
            guard let role = Role(label: label) else { throw HubError.validation("role must be \(Role.choices)") }
            return role
        }
        if let password = body.password { try Passwords.validate(password) }
        if principal.id == String(id), role.map({ $0 != .admin }) == true || body.disabled == true {
            throw HubError.validation("admins cannot demote or disable themselves; ask another admin")
        }
        let hash = try await body.password.asyncMap { try await access.passwords.hash($0) }
        let writer = RegistryService.Writer(principal: principal, requestID: context.requestID)
        let user = try await service.database.transaction { db -> UserRecord in
            guard let current = try await AccountStore.user(id: id, on: db) else { throw HubError.notFound("no user with id \(id)") }
            let now = Timestamp.now()
            let newRole = role ?? current.role
            let disabled = body.disabled ?? current.disabled
            try await db.raw("UPDATE users SET role = \(bind: newRole.rawValue), disabled = \(bind: disabled), updated_at = \(bind: now) WHERE id = \(bind: id)").run()
            if let hash { try await db.raw("UPDATE users SET password_hash = \(bind: hash) WHERE id = \(bind: id)").run() }
            var after: [String: JSONText.Value] = ["role": .string(newRole.rawValue), "disabled": .bool(disabled)]
            if hash != nil { after["password"] = .string("changed") }
            try await AuditLog.record(writer.entry("update", entity: "user", id: id),
                                      before: ["role": .string(current.role.rawValue), "disabled": .bool(current.disabled), "password": .null], after: after, on: db)
            guard let user = try await AccountStore.user(id: id, on: db) else { throw HubError.notFound("no user with id \(id)") }
            return user
        }
        access.forget(userID: id)
        if role != nil || body.disabled != nil { service.announceAccountChanged("user:\(id)") }
        return jsonResponse(user.json)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
