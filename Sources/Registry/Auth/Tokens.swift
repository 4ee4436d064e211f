import Crypto
import Foundation
import HubCore
import JWTKit

/// The claims of a login token.
struct LoginClaims: JWTPayload {
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var jti: IDClaim
    var role: String
    var email: String

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// Signs and verifies HS256 login tokens. The secret comes from the configuration, or is generated once
/// (32 random bytes) and kept in `<data dir>/jwt-secret` with mode 0600.
public struct TokenService: Sendable {
    let keys: JWTKeyCollection
    public let lifetime: Double

    public init(secret: String, lifetime: Double = 24 * 3600) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
        self.lifetime = lifetime
    }

    /// The configured secret, or the one kept in the data directory (created on first use).
    public static func secret(configured: String?, dataDirectory: String) throws -> String {
        if let configured { return configured }
        let path = (dataDirectory as NSString).appendingPathComponent("jwt-secret")
        if let existing = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), existing.utf8.count >= 32 {
            return existing
        }
        let secret = RandomKey.hex(bytes: 32)
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw HubError.unavailable("cannot write the JWT secret to \(path)")
        }
        return secret
    }

    struct Issued: Sendable {
        let token: String
        let expiresAt: Double
        let jti: String
    }

    func issue(userID: Int64, email: String, role: Role, now: Double = Timestamp.now()) async throws -> Issued {
        let jti = RandomKey.hex(bytes: 16)
        let expires = now + lifetime
        let claims = LoginClaims(
            sub: .init(value: String(userID)), exp: .init(value: Date(timeIntervalSince1970: expires)),
            iat: .init(value: Date(timeIntervalSince1970: now)), jti: .init(value: jti), role: role.rawValue, email: email)
        return Issued(token: try await keys.sign(claims), expiresAt: expires, jti: jti)
    }

    /// The verified claims, or `nil` for a token that is malformed, forged, expired or not HS256.
    func verify(_ token: String) async -> LoginClaims? {
        try? await keys.verify(token, as: LoginClaims.self)
    }
}

/// Random secrets.
public enum RandomKey {
    /// `bytes` random bytes from the system generator, as lowercase hex.
    public static func hex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var out = ""
        out.reserveCapacity(bytes * 2)
        for _ in 0..<bytes {
            let byte = UInt8.random(in: 0...255, using: &generator)
            out += byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }
        return out
    }

    /// SHA-256 of `text`, as lowercase hex.
    public static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
