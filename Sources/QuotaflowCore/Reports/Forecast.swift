/// A project's month-end forecast from its trailing daily average.
public enum Forecast {
    public static let dayMs: Int64 = 86_400_000

    public struct Result: Sendable, Equatable {
        /// The trailing daily average (micro-USD per day).
        public var dailyAverage: Int64
        /// What the period will have spent at its end at that rate.
        public var forecast: Int64
        /// The cap would be reached before the period ends (or already is).
        public var onCourseToExceed: Bool
        /// When the cap is (or was) reached at that rate.
        public var capReachedAt: Int64?
    }

    /// `spent` this period and `recent` since `windowStart` (the last 7 days, or the period's start
    /// if later), projected to the period's end. The cap includes rollover.
    public static func project(spent: Int64, recent: Int64, windowStart: Int64, period: BillingPeriod, cap: Int64?, now: Int64) -> Result {
        let days = max(1.0, Double(now - windowStart) / Double(dayMs))
        let perDay = Double(recent) / days
        let remainingDays = Double(max(0, period.end - now)) / Double(dayMs)
        let forecast = spent + Int64((perDay * remainingDays).rounded())
        var reachedAt: Int64?
        if let cap {
            if spent >= cap {
                reachedAt = now
            } else if perDay > 0 {
                let at = now + Int64(Double(cap - spent) / perDay * Double(dayMs))
                if at < period.end { reachedAt = at }
            }
        }
        return Result(dailyAverage: Int64(perDay.rounded()), forecast: forecast, onCourseToExceed: reachedAt != nil, capReachedAt: reachedAt)
    }

    /// Each project's spend including its descendants', from the spend of each project alone.
    public static func subtreeSpend(_ own: [String: Int64], parents: [String: String?]) -> [String: Int64] {
        var total: [String: Int64] = [:]
        for (project, amount) in own {
            var next: String? = project
            var seen = Set<String>()
            while let id = next, seen.insert(id).inserted {
                total[id, default: 0] += amount
                next = parents[id] ?? nil
            }
        }
        return total
    }
}
