/// The windows report: per credential and window, utilization over time, the limit hits, and the
/// share of each window period that reset unused (`1 - the highest utilization seen in it`).
public enum WindowUsage {
    /// One stored sample of one window.
    public struct Sample: Sendable, Equatable {
        public var resourceId: String
        public var holder: String
        public var seconds: Int64
        public var scope: String
        public var utilization: Double
        public var resetsAt: Int64?
        public var rejected: Bool
        public var at: Int64

        public init(
            resourceId: String, holder: String, seconds: Int64, scope: String, utilization: Double, resetsAt: Int64?, rejected: Bool, at: Int64
        ) {
            self.resourceId = resourceId
            self.holder = holder
            self.seconds = seconds
            self.scope = scope
            self.utilization = utilization
            self.resetsAt = resetsAt
            self.rejected = rejected
            self.at = at
        }
    }

    public struct LimitHit: Sendable, Equatable {
        public var resourceId: String
        public var holder: String
        public var at: Int64
        public var until: Int64?
        public var windows: String
        public var cause: String

        public init(resourceId: String, holder: String, at: Int64, until: Int64?, windows: String, cause: String) {
            self.resourceId = resourceId
            self.holder = holder
            self.at = at
            self.until = until
            self.windows = windows
            self.cause = cause
        }
    }

    /// One window period: from the first sample to its reset, and the most of it that was used.
    public struct Period: Sendable, Equatable {
        public var resetsAt: Int64
        public var peak: Double
        /// Ended periods only: the share that reset unused.
        public var unusedShare: Double?
    }

    public struct Window: Sendable, Equatable {
        public var resourceId: String
        public var holder: String
        public var seconds: Int64
        public var scope: String
        /// `(at, utilization)`, at most `maxPoints` of them (evenly thinned, the last kept).
        public var series: [(Int64, Double)]
        public var periods: [Period]
        /// The mean unused share of the ended periods, `nil` before any ended.
        public var unusedShare: Double?

        public static func == (a: Window, b: Window) -> Bool {
            a.resourceId == b.resourceId && a.holder == b.holder && a.seconds == b.seconds && a.scope == b.scope && a.periods == b.periods
                && a.unusedShare == b.unusedShare && a.series.map(\.0) == b.series.map(\.0) && a.series.map(\.1) == b.series.map(\.1)
        }
    }

    public static let maxPoints = 500

    /// Groups samples by credential and window; `now` decides which periods have ended.
    public static func compute(_ samples: [Sample], now: Int64) -> [Window] {
        struct Key: Hashable {
            var resourceId: String
            var holder: String
            var seconds: Int64
            var scope: String
        }
        var grouped: [Key: [Sample]] = [:]
        for s in samples { grouped[Key(resourceId: s.resourceId, holder: s.holder, seconds: s.seconds, scope: s.scope), default: []].append(s) }
        var out: [Window] = []
        for (key, list) in grouped {
            let sorted = list.sorted { $0.at < $1.at }
            var peaks: [Int64: Double] = [:]
            for s in sorted {
                guard var resets = s.resetsAt else { continue }
                // A reset derived from "seconds until" drifts a little: within the tolerance it is the same period.
                if let known = peaks.keys.first(where: { abs($0 - resets) <= WindowSet.resetToleranceMs }) { resets = known }
                peaks[resets] = max(peaks[resets] ?? 0, s.utilization)
            }
            let periods = peaks.keys.sorted().map { resets in
                let peak = peaks[resets]!
                return Period(resetsAt: resets, peak: peak, unusedShare: resets <= now ? max(0, min(1, 1 - peak)) : nil)
            }
            let ended = periods.compactMap(\.unusedShare)
            let unused = ended.isEmpty ? nil : ended.reduce(0, +) / Double(ended.count)
            out.append(
                Window(
                    resourceId: key.resourceId, holder: key.holder, seconds: key.seconds, scope: key.scope,
                    series: thin(sorted.map { ($0.at, $0.utilization) }), periods: periods, unusedShare: unused))
        }
        return out.sorted { ($0.resourceId, $0.holder, $0.seconds, $0.scope) < ($1.resourceId, $1.holder, $1.seconds, $1.scope) }
    }

    static func thin(_ points: [(Int64, Double)]) -> [(Int64, Double)] {
        guard points.count > maxPoints else { return points }
        let step = Double(points.count - 1) / Double(maxPoints - 1)
        return (0..<maxPoints).map { points[Int((Double($0) * step).rounded())] }
    }
}

extension WindowUsage {
    /// One credential's plan capacity that reset unused: the unused share of its longest own window.
    public struct PlanUnused: Sendable, Equatable {
        public var resourceId: String
        public var holder: String
        public var window: Int64
        public var unusedShare: Double
    }

    /// Per credential, the unused share of its longest own window with ended periods.
    public static func planUnused(_ windows: [Window]) -> [PlanUnused] {
        var best: [String: PlanUnused] = [:]
        for w in windows where w.scope.isEmpty {
            guard let u = w.unusedShare else { continue }
            let key = "\(w.resourceId)\u{1F}\(w.holder)"
            if let b = best[key], b.window >= w.seconds { continue }
            best[key] = PlanUnused(resourceId: w.resourceId, holder: w.holder, window: w.seconds, unusedShare: u)
        }
        return best.values.sorted { ($0.resourceId, $0.holder) < ($1.resourceId, $1.holder) }
    }

    /// The share of a monthly fee that went unused over `span`: `fee × span / month × unused`, rounded down.
    public static func unusedFee(monthly: Int64, span: Int64, unusedShare: Double) -> Int64 {
        let prorated = Savings.prorate(monthly, span: span)
        return Int64((Double(prorated) * max(0, min(1, unusedShare))).rounded(.down))
    }
}
