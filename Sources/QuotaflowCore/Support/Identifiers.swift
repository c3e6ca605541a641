import Crypto

/// Random identifiers and issued secrets.
public enum Identifier {
    static let alphabet: [UInt8] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// Random base62 text of `length` characters (about 5.95 bits each).
    public static func random(_ length: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        var out = [UInt8]()
        out.reserveCapacity(length)
        while out.count < length {
            // Rejection sampling keeps the distribution uniform.
            let byte = UInt8.random(in: 0...255, using: &rng)
            if byte < 248 { out.append(alphabet[Int(byte % 62)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// An object id such as `pool_3kTq...`.
    public static func make(_ prefix: String) -> String { prefix + "_" + random(20) }
}

/// The kinds of secrets Quotaflow issues. Every one starts with `qf_`, so leaked keys are easy to spot.
public enum SecretKind: String, Sendable {
    case operatorToken = "qf_op_"
    case adminKey = "qf_ak_"
    case projectKey = "qf_pk_"
    case seatKey = "qf_sk_"

    /// A new secret: the prefix and 40 random base62 characters (about 238 bits).
    public func generate() -> String { rawValue + Identifier.random(40) }
}

public enum SecretDigest {
    /// Hex SHA-256 of a secret. Issued secrets are random, so a fast digest is enough.
    public static func of(_ secret: String) -> String {
        hex(SHA256.hash(data: Array(secret.utf8)))
    }

    /// The part of a secret that may be shown after issue: its prefix and four more characters.
    public static func displayPrefix(_ secret: String) -> String {
        let kindPrefix = secret.hasPrefix("qf_") ? 6 : 0
        return String(secret.prefix(kindPrefix + 6))
    }

    /// Keyed digest (HMAC-SHA256) for identifiers we must group by but not store, such as end users.
    public static func keyed(_ value: String, key: SymmetricKey) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Array(value.utf8), using: key))
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Constant-time comparison of two digests.
    public static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}

/// The last characters of a credential, for recognition without disclosure: four for credentials of
/// 16 characters or more, and never more than a quarter of a shorter one.
public func credentialHint(_ credential: String) -> String {
    "…" + credential.suffix(min(4, credential.count / 4))
}
