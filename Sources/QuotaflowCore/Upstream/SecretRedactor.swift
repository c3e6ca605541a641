/// Removes a credential from what an upstream sends back before it reaches a client.
///
/// Providers echo keys in errors, often masked (`sk-abc…wxyz`) and sometimes whole. Any run of
/// `minRun` or more bytes that also occurs in a secret — a prefix, a suffix, one side of a masked
/// form, or the whole secret — is overwritten with `*`, byte for byte, so lengths and JSON stay
/// valid. Bytes without a match are never copied or re-encoded. Secrets shorter than `minRun`
/// (but at least 8 bytes) are redacted where they occur whole.
public struct SecretRedactor: Sendable {
    public static let minRun = 16

    struct Window: Hashable {
        let a: UInt64
        let b: UInt64
    }

    let windows: Set<Window>
    /// Bytes that occur in some secret; a match is made of these only.
    let charset: [Bool]
    let shortSecrets: [[UInt8]]

    public init(secrets: [String]) {
        var windows = Set<Window>()
        var charset = [Bool](repeating: false, count: 256)
        var short: [[UInt8]] = []
        for secret in secrets {
            let bytes = Array(secret.utf8)
            guard bytes.count >= 8 else { continue }
            for b in bytes { charset[Int(b)] = true }
            if bytes.count < Self.minRun {
                short.append(bytes)
                continue
            }
            bytes.withUnsafeBytes { buffer in
                for start in 0...(buffer.count - Self.minRun) { windows.insert(Self.window(buffer, at: start)) }
            }
        }
        self.windows = windows
        self.charset = charset
        self.shortSecrets = short
    }

    public static let none = SecretRedactor(secrets: [])

    public var isEmpty: Bool { windows.isEmpty && shortSecrets.isEmpty }

    static func window(_ buffer: UnsafeRawBufferPointer, at start: Int) -> Window {
        Window(
            a: buffer.loadUnaligned(fromByteOffset: start, as: UInt64.self),
            b: buffer.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self))
    }

    /// The ranges of `buffer` that must be redacted, in order and not overlapping.
    func matches(_ buffer: UnsafeRawBufferPointer) -> [Range<Int>] {
        guard !isEmpty else { return [] }
        var out: [Range<Int>] = []
        func mark(_ r: Range<Int>) {
            if let last = out.last, last.upperBound >= r.lowerBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        let n = buffer.count
        var i = 0
        while i < n {
            guard charset[Int(buffer[i])] else {
                i += 1
                continue
            }
            var end = i
            while end < n, charset[Int(buffer[end])] { end += 1 }
            let length = end - i
            if length >= Self.minRun, !windows.isEmpty {
                for start in i...(end - Self.minRun) where windows.contains(Self.window(buffer, at: start)) {
                    mark(start..<(start + Self.minRun))
                }
            }
            for secret in shortSecrets where secret.count <= length {
                var s = i
                while s + secret.count <= end {
                    if buffer[s] == secret[0], (0..<secret.count).allSatisfy({ buffer[s + $0] == secret[$0] }) {
                        mark(s..<(s + secret.count))
                        s += secret.count
                    } else {
                        s += 1
                    }
                }
            }
            i = end
        }
        return out
    }

    /// A redacted copy, or `nil` when nothing matched (forward the original bytes then).
    public func redacted(_ buffer: UnsafeRawBufferPointer) -> [UInt8]? {
        let found = matches(buffer)
        guard !found.isEmpty else { return nil }
        var out = Array(buffer)
        for r in found { for j in r { out[j] = UInt8(ascii: "*") } }
        return out
    }

    public func redact(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { redacted($0) } ?? bytes
    }

    public func redact(_ text: String) -> String {
        var text = text
        guard let out = text.withUTF8({ redacted(UnsafeRawBufferPointer($0)) }) else { return text }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `bytes` (shorter than `minRun`) could be the start of a match continuing in later bytes.
    func couldContinue(_ tail: ArraySlice<UInt8>) -> Bool {
        guard !tail.isEmpty else { return false }
        if tail.count >= Self.minRun {
            return tail.withUnsafeBytes { windows.contains(Self.window($0, at: $0.count - Self.minRun)) }
                || shortSecrets.contains { !$0.isEmpty }
        }
        return true
    }
}

/// Redacts a byte stream whose matches may be split across chunks.
///
/// A chunk that ends inside a run of secret-alphabet bytes keeps that run back until the next
/// chunk shows where it ends (at most `maxCarry` bytes). Event streams end each event with a blank
/// line, so in practice nothing is held and every event is forwarded as soon as it arrives.
public struct StreamRedactor: Sendable {
    public static let maxCarry = 64 * 1024
    let redactor: SecretRedactor
    var carry: [UInt8] = []

    public init(_ redactor: SecretRedactor) { self.redactor = redactor }

    /// The bytes to forward now.
    public mutating func feed(_ bytes: [UInt8]) -> [UInt8] {
        guard !redactor.isEmpty else { return bytes }
        var all = carry
        all.append(contentsOf: bytes)
        carry = []
        var cut = all.count
        while cut > 0, redactor.charset[Int(all[cut - 1])] { cut -= 1 }
        let tail = all[cut...]
        if !tail.isEmpty, tail.count < Self.maxCarry, redactor.couldContinue(tail) {
            carry = Array(tail)
            all.removeLast(tail.count)
        }
        return redactor.redact(all)
    }

    /// Whatever was held back, at the end of the stream.
    public mutating func finish() -> [UInt8] {
        defer { carry = [] }
        return redactor.redact(carry)
    }
}
