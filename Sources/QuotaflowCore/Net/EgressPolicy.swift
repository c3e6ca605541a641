#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which network addresses a tenant-set URL may reach (resources' base URLs, webhooks, token endpoints).
///
/// Link-local and cloud metadata addresses are always refused: they would turn Quotaflow into a
/// reader of the host's own credentials. Loopback and private ranges are refused unless the
/// operator allows them (tests, the demo and single-company installs do). The operator's own
/// resources and overflow offers are not checked.
public struct EgressPolicy: Sendable, Equatable {
    public var allowPrivate: Bool

    public init(allowPrivate: Bool) { self.allowPrivate = allowPrivate }

    /// `nil` when `address` (4 or 16 bytes) may be reached, otherwise why not.
    public func refusal(for address: [UInt8]) -> String? {
        switch Self.classify(address) {
        case .public: return nil
        case .private(let what): return allowPrivate ? nil : "\(what), which tenant resources may not reach unless the operator allows private egress"
        case .forbidden(let what): return "\(what), which is never reachable from tenant resources"
        }
    }

    public enum AddressClass: Sendable, Equatable {
        case `public`
        case `private`(String)
        case forbidden(String)
    }

    public static func classify(_ a: [UInt8]) -> AddressClass {
        if a.count == 16 {
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are judged as the IPv4 address.
            if a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xFF && a[11] == 0xFF { return classify(Array(a[12..<16])) }
            if a.allSatisfy({ $0 == 0 }) { return .forbidden("the unspecified address") }
            if a[0..<15].allSatisfy({ $0 == 0 }) && a[15] == 1 { return .private("a loopback address") }
            if a[0] == 0xFE && a[1] & 0xC0 == 0x80 { return .forbidden("a link-local address") }
            if a[0] == 0xFF { return .forbidden("a multicast address") }
            // fd00:ec2::254, the IPv6 instance metadata address.
            if a == [0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54] { return .forbidden("a cloud metadata address") }
            if a[0] & 0xFE == 0xFC { return .private("a private (unique local) address") }
            if a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xFF && a[3] == 0x9B { return classify(Array(a[12..<16])) }  // NAT64
            return .public
        }
        guard a.count == 4 else { return .forbidden("an unknown address family") }
        switch (a[0], a[1]) {
        case (0, _): return .forbidden("the unspecified network 0.0.0.0/8")
        case (169, 254): return .forbidden("a link-local or cloud metadata address (169.254.0.0/16)")
        case (100, 100) where a[2] == 100 && a[3] == 200: return .forbidden("a cloud metadata address")
        case (192, 0) where a[2] == 0: return .forbidden("an IETF protocol address (192.0.0.0/24)")
        case (224...255, _): return .forbidden("a multicast or reserved address")
        case (127, _): return .private("a loopback address")
        case (10, _): return .private("a private address (10.0.0.0/8)")
        case (172, 16...31): return .private("a private address (172.16.0.0/12)")
        case (192, 168): return .private("a private address (192.168.0.0/16)")
        case (100, 64...127): return .private("a shared (carrier-grade NAT) address")
        case (198, 18...19): return .private("a benchmarking address (198.18.0.0/15)")
        default: return .public
        }
    }

    /// The bytes of an IP literal (`10.0.0.1`, `::1`, `[::1]`), or `nil` for a host name.
    public static func parseIP(_ text: String) -> [UInt8]? {
        var s = text
        if s.hasPrefix("["), s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Text form of 4 or 16 address bytes, for messages.
    public static func format(_ a: [UInt8]) -> String {
        if a.count == 4 { return a.map(String.init).joined(separator: ".") }
        let words = stride(from: 0, to: a.count, by: 2).map { UInt16(a[$0]) << 8 | UInt16(a[$0 + 1]) }
        // The longest run of two or more zero words becomes "::" (RFC 5952).
        var best = (start: -1, length: 0)
        var i = 0
        while i < words.count {
            guard words[i] == 0 else {
                i += 1
                continue
            }
            var j = i
            while j < words.count, words[j] == 0 { j += 1 }
            if j - i > best.length { best = (i, j - i) }
            i = j
        }
        let hex = words.map { String($0, radix: 16) }
        guard best.length >= 2 else { return hex.joined(separator: ":") }
        let head = hex[..<best.start].joined(separator: ":")
        let tail = hex[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}

/// The scheme, host and port of an `http(s)://` URL, enough to decide where a call goes.
public struct URLTarget: Sendable, Equatable {
    public let secure: Bool
    public let host: String
    public let port: Int

    public init?(_ url: String) {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            secure = true
            rest = url.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            secure = false
            rest = url.dropFirst(7)
        } else {
            return nil
        }
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host = String(authority)
        var port = secure ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
        }
        guard !host.isEmpty else { return nil }
        self.host = host.lowercased()
        self.port = port
    }

    /// The literal address when the host is an IP, not a name.
    public var literalAddress: [UInt8]? { EgressPolicy.parseIP(host) }
}
