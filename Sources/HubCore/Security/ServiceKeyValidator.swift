/// Checks service keys (`X-Service-Key`, gRPC `x-service-key`) against the configured list in constant time.
public struct ServiceKeyValidator: Sendable {
    private let keys: [[UInt8]]

    public init(keys: [String]) {
        self.keys = keys.map { Array($0.utf8) }
    }

    /// Whether any keys are configured at all.
    public var isConfigured: Bool { !keys.isEmpty }

    /// `true` when `candidate` equals one of the configured keys. Every configured key is compared, and each
    /// comparison takes time independent of where the bytes differ.
    public func isValid(_ candidate: String?) -> Bool {
        guard let candidate else { return false }
        let bytes = Array(candidate.utf8)
        var matched = false
        for key in keys {
            matched = ConstantTime.equals(key, bytes) || matched
        }
        return matched
    }
}

/// Comparisons whose running time does not depend on the contents compared.
public enum ConstantTime {
    /// Compares two byte strings without an early exit. Differing lengths are unequal, and the time taken
    /// depends only on the length of `b`.
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        if a.count != b.count { difference |= 1 }
        for index in 0..<b.count {
            let left = a.isEmpty ? 0 : a[index % a.count]
            difference |= left ^ b[index]
        }
        return difference == 0
    }

    public static func equals(_ a: String, _ b: String) -> Bool {
        equals(Array(a.utf8), Array(b.utf8))
    }
}
