import Crypto

/// Encrypts upstream credentials at rest with AES-256-GCM.
///
/// Each ciphertext is bound to its owner through additional authenticated data (for example the
/// resource id), so a ciphertext copied onto another row fails to open instead of leaking.
public struct CredentialCipher: Sendable {
    public enum CipherError: Error, CustomStringConvertible {
        case badKey
        case openFailed

        public var description: String {
            switch self {
            case .badKey: return "the master key must be 32 bytes, given as 64 hex characters or base64"
            case .openFailed: return "a stored credential could not be decrypted with this master key"
            }
        }
    }

    let key: SymmetricKey

    public init(key: SymmetricKey) { self.key = key }

    /// Accepts 64 hex characters or base64 of 32 bytes.
    public init(encodedKey: String) throws {
        let text = encodedKey.trimmingWhitespace()
        if text.utf8.count == 64, let bytes = Self.decodeHex(text) {
            self.key = SymmetricKey(data: bytes)
        } else if let bytes = Base64.decode(text), bytes.count == 32 {
            self.key = SymmetricKey(data: bytes)
        } else {
            throw CipherError.badKey
        }
    }

    public static func generateEncodedKey() -> String {
        let key = SymmetricKey(size: .bits256)
        return key.withUnsafeBytes { SecretDigest.hex($0) }
    }

    public func seal(_ plaintext: String, context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(Array(plaintext.utf8), using: key, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw CipherError.openFailed }
        return Array(combined)
    }

    public func open(_ ciphertext: [UInt8], context: String) throws -> String {
        do {
            let box = try AES.GCM.SealedBox(combined: ciphertext)
            let plain = try AES.GCM.open(box, using: key, authenticating: Array(context.utf8))
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw CipherError.openFailed
        }
    }

    /// A value stored once per database that proves later starts use the same master key.
    public func makeCheckValue() throws -> [UInt8] { try seal("quotaflow-master-key-check", context: "key-check") }

    public func verify(checkValue: [UInt8]) -> Bool {
        (try? open(checkValue, context: "key-check")) == "quotaflow-master-key-check"
    }

    /// A sub-key for keyed digests (end-user identifiers), derived so it never equals the master key.
    /// A keyed digest of a secret (HMAC-SHA256 under a derived key, hex): equal secrets give equal
    /// digests, and the digest tells nothing about the secret without the master key.
    public func digest(_ secret: String) -> String {
        SecretDigest.keyed(secret, key: derivedKey("credential-digest"))
    }

    public func derivedKey(_ label: String) -> SymmetricKey {
        SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array(label.utf8), using: key))
    }

    static func decodeHex(_ s: String) -> [UInt8]? {
        var out = [UInt8]()
        var high: UInt8?
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return high == nil ? out : nil
    }
}

/// Minimal standard base64, so the core needs no Foundation data types.
public enum Base64 {
    static let table: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], table[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], 61, 61]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [table[Int(n >> 18 & 63)], table[Int(n >> 12 & 63)], table[Int(n >> 6 & 63)], 61]
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ s: String) -> [UInt8]? {
        var values = [UInt8]()
        for c in s.utf8 {
            switch c {
            case 65...90: values.append(c - 65)
            case 97...122: values.append(c - 71)
            case 48...57: values.append(c + 4)
            case 43, 45: values.append(62)
            case 47, 95: values.append(63)
            case 61: continue
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        var out = [UInt8]()
        var i = 0
        while i < values.count {
            let chunk = values[i..<min(i + 4, values.count)]
            var n: UInt32 = 0
            for (k, v) in chunk.enumerated() { n |= UInt32(v) << (18 - 6 * UInt32(k)) }
            out.append(UInt8(n >> 16 & 255))
            if chunk.count > 2 { out.append(UInt8(n >> 8 & 255)) }
            if chunk.count > 3 { out.append(UInt8(n & 255)) }
            i += 4
        }
        return out
    }
}

extension String {
    public func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}
