/// What an upstream's rate-limit headers say: when to try again and the limits it learned.
public struct RateLimitInfo: Sendable, Equatable {
    /// When the upstream said its limit resets (ms since epoch), if it said.
    public var resetAt: Int64?
    public var limitRequests: Int64?
    public var limitTokens: Int64?
    public var remainingRequests: Int64?
    public var remainingTokens: Int64?
    /// The headers that mattered, for evidence.
    public var evidence: [(String, String)]

    public static func == (a: RateLimitInfo, b: RateLimitInfo) -> Bool {
        a.resetAt == b.resetAt && a.limitRequests == b.limitRequests && a.limitTokens == b.limitTokens
            && a.remainingRequests == b.remainingRequests && a.remainingTokens == b.remainingTokens
    }

    /// Reads `Retry-After`, OpenAI's `x-ratelimit-*` and Anthropic's `anthropic-ratelimit-*` headers.
    /// Header names are matched case-insensitively.
    public static func parse(_ headers: [(String, String)], nowMs: Int64) -> RateLimitInfo {
        var info = RateLimitInfo(evidence: [])
        var remaining: [String: Int64] = [:]
        var retryAfter: Int64?
        for (rawName, value) in headers {
            let name = rawName.lowercased()
            let v = value.trimmingWhitespace()
            guard name == "retry-after" || name == "retry-after-ms" || name.hasPrefix("x-ratelimit-") || name.hasPrefix("anthropic-ratelimit-")
            else { continue }
            info.evidence.append((name, String(v.prefix(100))))
            switch name {
            case "retry-after":
                if let seconds = Double(v), seconds >= 0 {
                    retryAfter = nowMs + Int64((seconds * 1000).rounded(.up))
                } else if let at = HTTPDate.parse(v) {
                    retryAfter = at
                }
            case "retry-after-ms":
                if let ms = Double(v), ms >= 0 { retryAfter = nowMs + Int64(ms.rounded(.up)) }
            case "x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit": info.limitRequests = Int64(v)
            case "x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit": info.limitTokens = Int64(v)
            case "x-ratelimit-remaining-requests", "anthropic-ratelimit-requests-remaining":
                info.remainingRequests = Int64(v)
                remaining["requests"] = Int64(v)
            case "x-ratelimit-remaining-tokens", "anthropic-ratelimit-tokens-remaining":
                info.remainingTokens = Int64(v)
                remaining["tokens"] = Int64(v)
            case "anthropic-ratelimit-input-tokens-remaining": remaining["input-tokens"] = Int64(v)
            case "anthropic-ratelimit-output-tokens-remaining": remaining["output-tokens"] = Int64(v)
            default: break
            }
        }
        // Tag resets whose matching "remaining" header says the budget is gone.
        var tagged: [(Int64, Bool)] = []
        for (rawName, value) in headers {
            let name = rawName.lowercased()
            guard let kind = resetKind(name) else { continue }
            let at =
                name.hasPrefix("x-ratelimit-reset")
                ? parseDuration(value.trimmingWhitespace()).map { nowMs + $0 } : Timestamp.parse(value.trimmingWhitespace())
            if let at { tagged.append((at, remaining[kind] == 0)) }
        }
        if let retryAfter {
            info.resetAt = retryAfter
        } else if let exhausted = tagged.filter({ $0.1 }).map(\.0).max() {
            info.resetAt = exhausted
        } else if let any = tagged.map(\.0).max() {
            info.resetAt = any
        }
        return info
    }

    /// `requests`, `tokens`, `input-tokens` or `output-tokens` for a reset header name.
    static func resetKind(_ name: String) -> String? {
        switch name {
        case "x-ratelimit-reset-requests", "anthropic-ratelimit-requests-reset": return "requests"
        case "x-ratelimit-reset-tokens", "anthropic-ratelimit-tokens-reset": return "tokens"
        case "anthropic-ratelimit-input-tokens-reset": return "input-tokens"
        case "anthropic-ratelimit-output-tokens-reset": return "output-tokens"
        default: return nil
        }
    }

    /// OpenAI-style durations: `20ms`, `1s`, `6m0s`, `1h2m3.5s`; a bare number means seconds.
    public static func parseDuration(_ text: String) -> Int64? {
        if let seconds = Double(text) { return seconds >= 0 ? Int64((seconds * 1000).rounded(.up)) : nil }
        var total = 0.0
        var number = ""
        var sawUnit = false
        var chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isNumber || c == "." {
                number.append(c)
                i += 1
                continue
            }
            guard let value = Double(number) else { return nil }
            number = ""
            if c == "m", i + 1 < chars.count, chars[i + 1] == "s" {
                total += value
                i += 2
            } else if c == "h" {
                total += value * 3_600_000
                i += 1
            } else if c == "m" {
                total += value * 60_000
                i += 1
            } else if c == "s" {
                total += value * 1000
                i += 1
            } else {
                return nil
            }
            sawUnit = true
        }
        chars.removeAll()
        guard number.isEmpty, sawUnit else { return nil }
        return Int64(total.rounded(.up))
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as used by `Retry-After`.
public enum HTTPDate {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    public static func parse(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, let day = Int(parts[1]), let monthIndex = months.firstIndex(of: parts[2].lowercased()),
            let year = Int(parts[3])
        else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        let days = Timestamp.days(fromCivil: Int64(year), monthIndex + 1, day)
        return (days * 86_400 + Int64(time[0] * 3600 + time[1] * 60 + time[2])) * 1000
    }
}
