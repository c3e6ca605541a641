import Crypto

/// AWS Signature Version 4, on swift-crypto (checked against AWS's published test suite in
/// Tests/fixtures/aws-sigv4). Used for Amazon Bedrock.
public enum SigV4 {
    public struct Credentials: Sendable, Equatable {
        public var accessKeyId: String
        public var secretAccessKey: String
        public var sessionToken: String?

        public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyId = accessKeyId
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }

        /// `ACCESS_KEY_ID:SECRET_ACCESS_KEY` or `ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN`, as a
        /// resource's credential is written.
        public init?(credential: String) {
            let parts = credential.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
            self.init(accessKeyId: parts[0], secretAccessKey: parts[1], sessionToken: parts.count == 3 && !parts[2].isEmpty ? parts[2] : nil)
        }
    }

    /// `20150830T123600Z` for a time in milliseconds since the epoch.
    public static func amzDate(_ ms: Int64) -> String {
        let s = Timestamp.format(ms)  // 2015-08-30T12:36:00.000Z or 2015-08-30T12:36:00Z
        let digits = s.prefix(19).filter { $0 != "-" && $0 != ":" }
        return String(digits) + "Z"
    }

    static let unreserved: Set<UInt8> = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8))

    /// Percent-encodes everything but the unreserved characters (and `/` when `keepSlash`).
    public static func encode(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        for b in s.utf8 {
            if unreserved.contains(b) || (keepSlash && b == UInt8(ascii: "/")) {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }

    /// Decodes `%XX` escapes (and leaves anything else as it is).
    static func decode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var i = s.utf8.startIndex
        let u = s.utf8
        while i < u.endIndex {
            if u[i] == UInt8(ascii: "%"), let a = u.index(i, offsetBy: 1, limitedBy: u.endIndex), a < u.endIndex,
                let b = u.index(i, offsetBy: 2, limitedBy: u.endIndex), b < u.endIndex,
                let v = UInt8(String(decoding: [u[a], u[b]], as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                i = u.index(i, offsetBy: 3)
            } else {
                bytes.append(u[i])
                i = u.index(after: i)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The canonical URI of a path as sent on the wire: dot segments and empty segments removed,
    /// then every byte but the unreserved ones and `/` encoded once more (AWS services other than S3).
    public static func canonicalURI(_ wirePath: String) -> String {
        var segments: [Substring] = []
        for seg in wirePath.split(separator: "/", omittingEmptySubsequences: true) {
            if seg == "." { continue }
            if seg == ".." {
                if !segments.isEmpty { segments.removeLast() }
                continue
            }
            segments.append(seg)
        }
        var path = "/" + segments.joined(separator: "/")
        if wirePath.hasSuffix("/") && !segments.isEmpty { path += "/" }
        return encode(path, keepSlash: true)
    }

    /// The canonical query: each key and value decoded and encoded again, sorted by key then value.
    public static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: true).map { pair -> (String, String) in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (encode(decode(kv[0])), kv.count > 1 ? encode(decode(kv[1])) : "")
        }
        return pairs.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Lower-cased names, values trimmed with inner runs of spaces collapsed, repeated names joined by
    /// commas, sorted by name.
    static func canonicalHeaders(_ headers: [(String, String)]) -> (text: String, signed: String) {
        var merged: [(String, [String])] = []
        for (name, value) in headers {
            let n = name.lowercased()
            let v = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ").trimmingWhitespace()
            if let i = merged.firstIndex(where: { $0.0 == n }) { merged[i].1.append(v) } else { merged.append((n, [v])) }
        }
        merged.sort { $0.0 < $1.0 }
        return (merged.map { "\($0.0):\($0.1.joined(separator: ","))\n" }.joined(), merged.map(\.0).joined(separator: ";"))
    }

    public static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String($0, radix: 16).leftPadded(2) }.joined()
    }

    public static func canonicalRequest(method: String, path: String, query: String, headers: [(String, String)], body: [UInt8]) -> String {
        let (text, signed) = canonicalHeaders(headers)
        return [method, canonicalURI(path), canonicalQuery(query), text, signed, hex(SHA256.hash(data: body))].joined(separator: "\n")
    }

    public static func stringToSign(canonicalRequest: String, amzDate: String, region: String, service: String) -> String {
        let scope = "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
        return ["AWS4-HMAC-SHA256", amzDate, scope, hex(SHA256.hash(data: Array(canonicalRequest.utf8)))].joined(separator: "\n")
    }

    public static func signature(stringToSign: String, secret: String, amzDate: String, region: String, service: String) -> String {
        func hmac(_ key: [UInt8], _ data: String) -> [UInt8] {
            Array(HMAC<SHA256>.authenticationCode(for: Array(data.utf8), using: SymmetricKey(data: key)))
        }
        let kDate = hmac(Array("AWS4\(secret)".utf8), String(amzDate.prefix(8)))
        let kSigning = hmac(hmac(hmac(kDate, region), service), "aws4_request")
        return hex(hmac(kSigning, stringToSign))
    }

    /// The `Authorization` value for a request whose headers (`host` and `x-amz-date` among them,
    /// and `x-amz-security-token` with a session) are all signed.
    public static func authorization(
        method: String, path: String, query: String, headers: [(String, String)], body: [UInt8], credentials: Credentials, amzDate: String,
        region: String, service: String
    ) -> String {
        let creq = canonicalRequest(method: method, path: path, query: query, headers: headers, body: body)
        let sts = stringToSign(canonicalRequest: creq, amzDate: amzDate, region: region, service: service)
        let sig = signature(stringToSign: sts, secret: credentials.secretAccessKey, amzDate: amzDate, region: region, service: service)
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(amzDate.prefix(8))/\(region)/\(service)/aws4_request, "
            + "SignedHeaders=\(canonicalHeaders(headers).signed), Signature=\(sig)"
    }

    /// Signs a request: returns the headers to add (`x-amz-date`, the session token, `authorization`).
    /// `headers` are those the request sends that should be signed (`host`, `content-type`...).
    public static func sign(
        method: String, host: String, path: String, query: String = "", headers: [(String, String)], body: [UInt8], credentials: Credentials,
        region: String, service: String, nowMs: Int64
    ) -> [(String, String)] {
        let date = amzDate(nowMs)
        var added: [(String, String)] = [("x-amz-date", date)]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        let all = [("host", host)] + headers + added
        let auth = authorization(
            method: method, path: path, query: query, headers: all, body: body, credentials: credentials, amzDate: date, region: region,
            service: service)
        return added + [("authorization", auth)]
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
