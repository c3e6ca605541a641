/// One usage window of a subscription credential as its provider last reported it. Windows are
/// identified by their length (and, for per-model-family limits, a scope such as `sonnet`), never
/// by a provider's name for them: Codex's "primary" is the 5-hour window on one plan and the weekly
/// one on another.
public struct WindowReading: Sendable, Equatable {
    public var seconds: Int64
    /// Empty for the credential's own window; a model family for a per-family limit.
    public var scope: String
    /// The share used, 0...1 (it can exceed 1 when a provider allows overage).
    public var utilization: Double
    /// When the window resets (ms since epoch), if said.
    public var resetsAt: Int64?
    /// The provider said this window refuses requests now (Anthropic's per-window status; Codex at 100%).
    /// A window at or past 100% that the provider still allows (overage) does not refuse.
    public var rejected: Bool

    public init(seconds: Int64, scope: String = "", utilization: Double, resetsAt: Int64?, rejected: Bool = false) {
        self.seconds = seconds
        self.scope = scope
        self.utilization = utilization
        self.resetsAt = resetsAt
        self.rejected = rejected
    }

    /// `5h`, `7d`, `7d_sonnet`, `90m`: how people and reports name it.
    public var label: String {
        let base: String
        if seconds % 86_400 == 0 {
            base = "\(seconds / 86_400)d"
        } else if seconds % 3600 == 0 {
            base = "\(seconds / 3600)h"
        } else {
            base = "\(seconds / 60)m"
        }
        return scope.isEmpty ? base : "\(base)_\(scope)"
    }

    /// The share used at `now`: nothing once the window has reset.
    public func utilization(at now: Int64) -> Double {
        if let resetsAt, resetsAt <= now { return 0 }
        return utilization
    }

    /// Whether it still refuses at `now`. A refusal without a reset time is taken for a minute after
    /// it was seen (`observedAt`), so a resource that gets no traffic is not shut out for good.
    public func refuses(at now: Int64, observedAt: Int64) -> Bool {
        rejected && refusingUntil(observedAt: observedAt) > now
    }

    func refusingUntil(observedAt: Int64) -> Int64 { resetsAt ?? observedAt + 60_000 }
}

/// What one answer's headers said about the credential's windows.
public struct WindowReport: Sendable, Equatable {
    public var readings: [WindowReading]
    /// The provider's overall verdict (Anthropic `anthropic-ratelimit-unified-status`): `allowed`,
    /// `allowed_warning` or `rejected`.
    public var status: String?
    /// When a refusing credential has room again: the latest reset of the windows that refuse (the
    /// limits compose, so the longest one decides).
    public var limitedUntil: Int64?
    /// The headers read, for evidence.
    public var evidence: [(String, String)]

    public init(readings: [WindowReading], status: String? = nil, limitedUntil: Int64? = nil, evidence: [(String, String)] = []) {
        self.readings = readings
        self.status = status
        self.limitedUntil = limitedUntil
        self.evidence = evidence
    }

    public static func == (a: WindowReport, b: WindowReport) -> Bool {
        a.readings == b.readings && a.status == b.status && a.limitedUntil == b.limitedUntil
    }

    public var isEmpty: Bool { readings.isEmpty && status == nil }
}

/// Reads subscription window headers: Anthropic's unified windows and Codex's primary/secondary
/// windows. Names are matched case-insensitively.
public enum WindowHeaders {
    /// Whether an upstream answer header is about windows or rate limits: such headers reach a
    /// client only in passthrough, where they describe the holder's own plan.
    public static func isWindowHeader(_ lowercasedName: String) -> Bool {
        lowercasedName.hasPrefix("anthropic-ratelimit-") || lowercasedName.hasPrefix("x-codex-") || lowercasedName.hasPrefix("x-ratelimit-")
            || lowercasedName == "retry-after" || lowercasedName == "retry-after-ms"
    }

    /// Whether a header could be a window header (`anthropic-ratelimit-unified-*`, `x-codex-*`), by a
    /// case-insensitive prefix test that allocates nothing.
    public static func mayCarryWindows(_ name: String) -> Bool {
        func hasPrefix(_ prefix: StaticString) -> Bool {
            let p = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
            var i = 0
            for b in name.utf8 {
                if i == p.count { return true }
                let lower = b >= 65 && b <= 90 ? b + 32 : b
                if lower != p[i] { return false }
                i += 1
            }
            return i == p.count
        }
        return hasPrefix("anthropic-ratelimit-unified-") || hasPrefix("x-codex-")
    }

    public static func parse(_ headers: [(String, String)], nowMs: Int64) -> WindowReport {
        struct Partial {
            var utilization: Double?
            var resetsAt: Int64?
            var status: String?
            var minutes: Int64?
        }
        var anthropic: [String: Partial] = [:]
        var codex: [String: Partial] = [:]
        var report = WindowReport(readings: [], evidence: [])
        var overallReset: Int64?
        for (rawName, rawValue) in headers {
            let name = rawName.lowercased()
            let value = rawValue.trimmingWhitespace()
            if name.hasPrefix("anthropic-ratelimit-unified-") {
                report.evidence.append((name, String(value.prefix(100))))
                let rest = name.dropFirst("anthropic-ratelimit-unified-".count)
                switch rest {
                case "status": report.status = value.lowercased()
                case "reset": overallReset = Int64(value).map { $0 * 1000 }
                default:
                    guard let dash = rest.lastIndex(of: "-") else { continue }
                    let claim = String(rest[..<dash])
                    let field = rest[rest.index(after: dash)...]
                    guard Self.claimSeconds(claim) != nil else { continue }
                    var p = anthropic[claim] ?? Partial()
                    switch field {
                    case "utilization": p.utilization = Double(value)
                    case "reset": p.resetsAt = Int64(value).map { $0 * 1000 }
                    case "status": p.status = value.lowercased()
                    default: continue
                    }
                    anthropic[claim] = p
                }
            } else if name.hasPrefix("x-codex-primary-") || name.hasPrefix("x-codex-secondary-") {
                report.evidence.append((name, String(value.prefix(100))))
                let which = name.hasPrefix("x-codex-primary-") ? "primary" : "secondary"
                let field = name.dropFirst("x-codex-\(which)-".count)
                var p = codex[which] ?? Partial()
                switch field {
                case "used-percent": p.utilization = Double(value).map { $0 / 100 }
                case "window-minutes": p.minutes = Int64(value)
                case "reset-at": p.resetsAt = Int64(value).map { $0 * 1000 }
                case "reset-after-seconds": if p.resetsAt == nil { p.resetsAt = Double(value).map { nowMs + Int64(($0 * 1000).rounded(.up)) } }
                default: continue
                }
                codex[which] = p
            }
        }
        for (claim, p) in anthropic.sorted(by: { $0.key < $1.key }) {
            guard let (seconds, scope) = Self.claimSeconds(claim), let u = p.utilization, u.isFinite, u >= 0 else { continue }
            report.readings.append(
                WindowReading(seconds: seconds, scope: scope, utilization: u, resetsAt: p.resetsAt, rejected: p.status == "rejected"))
        }
        for (_, p) in codex.sorted(by: { $0.key < $1.key }) {
            guard let minutes = p.minutes, minutes > 0, let u = p.utilization, u.isFinite, u >= 0 else { continue }
            report.readings.append(WindowReading(seconds: minutes * 60, utilization: u, resetsAt: p.resetsAt, rejected: u >= 1))
        }
        report.readings.sort { ($0.seconds, $0.scope) < ($1.seconds, $1.scope) }
        // Only the credential's own windows limit it as a whole; a per-model-family window that is used
        // up leaves the others usable, so it never cools the credential.
        var refusing = report.readings.filter { $0.rejected && $0.scope.isEmpty }
        if report.status == "rejected" && refusing.isEmpty {
            // Refused without a per-window status: the own windows that are full are the ones.
            for i in report.readings.indices where report.readings[i].scope.isEmpty && report.readings[i].utilization >= 1 {
                report.readings[i].rejected = true
            }
            refusing = report.readings.filter { $0.rejected && $0.scope.isEmpty }
        }
        let familyOnly = refusing.isEmpty && report.readings.contains { $0.rejected && !$0.scope.isEmpty }
        if !refusing.isEmpty || (report.status == "rejected" && !familyOnly) {
            let resets = refusing.compactMap(\.resetsAt) + (report.status == "rejected" ? [overallReset].compactMap { $0 } : [])
            report.limitedUntil = resets.max()
        }
        return report
    }

    /// `5h` → 18,000 s; `7d_sonnet` → (604,800 s, `sonnet`); `90m` → 5,400 s.
    static func claimSeconds(_ claim: String) -> (Int64, String)? {
        let parts = claim.split(separator: "_", maxSplits: 1)
        guard let head = parts.first, let unit = head.last, let n = Int64(head.dropLast()), n > 0 else { return nil }
        let scope = parts.count > 1 ? String(parts[1]) : ""
        switch unit {
        case "m": return (n * 60, scope)
        case "h": return (n * 3600, scope)
        case "d": return (n * 86_400, scope)
        default: return nil
        }
    }
}

/// The windows one credential last reported, merged answer by answer.
public struct WindowSet: Sendable, Equatable {
    public var readings: [WindowReading] = []
    public var status: String?
    public var observedAt: Int64 = 0

    public init(readings: [WindowReading] = [], status: String? = nil, observedAt: Int64 = 0) {
        self.readings = readings
        self.status = status
        self.observedAt = observedAt
    }

    /// Resets derived from "seconds until reset" drift by the answer's latency: two within this much
    /// of each other are the same period.
    public static let resetToleranceMs: Int64 = 90_000

    /// Takes in a new report: each window it names replaces the one of the same length and scope
    /// (keeping the known reset when the new one is the same period, within the tolerance).
    public mutating func merge(_ report: WindowReport, now: Int64) {
        for var r in report.readings {
            if let i = readings.firstIndex(where: { $0.seconds == r.seconds && $0.scope == r.scope }) {
                if let old = readings[i].resetsAt, let new = r.resetsAt, abs(old - new) <= Self.resetToleranceMs { r.resetsAt = old }
                readings[i] = r
            } else {
                readings.append(r)
            }
        }
        readings.sort { ($0.seconds, $0.scope) < ($1.seconds, $1.scope) }
        if let status = report.status { self.status = status }
        observedAt = now
    }

    /// The credential's own windows (not per model family), shortest first.
    var own: [WindowReading] { readings.filter { $0.scope.isEmpty } }

    /// What changes routing or a report: which windows refuse, and each period. Persisted at once
    /// when it changes; utilization alone is written at most every few seconds.
    public var signature: String {
        readings.map { "\($0.label):\($0.resetsAt ?? 0):\($0.rejected)" }.joined(separator: ",") + "|" + (status ?? "")
    }
}

/// Reset-aware routing among pooled and exclusive capacity (a core policy). A credential whose
/// short window is at or above the threshold takes no new holder or conversation unless that window
/// resets within the grace period. Among the rest, the credential whose capacity would otherwise
/// expire unused goes first: the highest remaining share of its longest window per hour left until
/// that window resets, times the plan's weight.
public struct WindowPolicy: Sendable, Equatable {
    public var threshold: Double
    public var graceMs: Int64

    public init(threshold: Double = 0.9, graceMs: Int64 = 300_000) {
        self.threshold = threshold
        self.graceMs = graceMs
    }

    /// Whether the shortest own window is at the threshold and does not reset soon.
    public func atThreshold(_ set: WindowSet, now: Int64) -> Bool {
        guard let short = set.own.first else { return false }
        guard short.utilization(at: now) >= threshold else { return false }
        if let resetsAt = short.resetsAt, resetsAt - now <= graceMs { return false }
        return true
    }

    /// The urgency of using this credential now; `nil` with no window data.
    public func urgency(_ set: WindowSet, weight: Double, now: Int64) -> Double? {
        guard let long = set.own.last else { return nil }
        let remaining = max(0, 1 - long.utilization(at: now))
        let msLeft: Int64
        if let resetsAt = long.resetsAt, resetsAt > now { msLeft = resetsAt - now } else { msLeft = long.seconds * 1000 }
        // A minute at least: a window about to reset is urgent, not infinitely so.
        let hoursLeft = Double(max(msLeft, 60_000)) / 3_600_000
        return max(0, weight) * remaining / hoursLeft
    }

    /// When the credential refuses because of one of its own windows, until when.
    public func refusingUntil(_ set: WindowSet, now: Int64) -> Int64? {
        let refusing = set.readings.filter { $0.scope.isEmpty && $0.refuses(at: now, observedAt: set.observedAt) }
        guard !refusing.isEmpty else { return nil }
        return refusing.map { $0.refusingUntil(observedAt: set.observedAt) }.max()
    }
}
