import Foundation

/// Monthly periods that start on a day of the month at midnight in a time zone.
public struct BillingPeriod: Sendable, Equatable {
    public let start: Int64
    public let end: Int64

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    public func contains(_ ms: Int64) -> Bool { ms >= start && ms < end }

    /// The period holding `nowMs` for `anchor`.
    public static func containing(_ nowMs: Int64, anchor: PeriodAnchor) -> BillingPeriod {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: anchor.timeZone) ?? TimeZone(identifier: "UTC")!
        let now = Date(timeIntervalSince1970: Double(nowMs) / 1000)
        let parts = calendar.dateComponents([.year, .month, .day], from: now)
        let day = min(max(anchor.day, 1), 28)
        func startOf(year: Int, month: Int) -> Date {
            calendar.date(from: DateComponents(year: year, month: month, day: day, hour: 0, minute: 0, second: 0))!
        }
        var year = parts.year!
        var month = parts.month!
        var start = startOf(year: year, month: month)
        if start > now {
            month -= 1
            if month == 0 {
                month = 12
                year -= 1
            }
            start = startOf(year: year, month: month)
        }
        var nextMonth = month + 1
        var nextYear = year
        if nextMonth == 13 {
            nextMonth = 1
            nextYear += 1
        }
        let end = startOf(year: nextYear, month: nextMonth)
        return BillingPeriod(start: Int64((start.timeIntervalSince1970 * 1000).rounded()), end: Int64((end.timeIntervalSince1970 * 1000).rounded()))
    }

    /// The period just before this one.
    public func previous(anchor: PeriodAnchor) -> BillingPeriod { Self.containing(start - 1, anchor: anchor) }

    /// Unused budget carried into the next period: what the previous period left of its cap, at most
    /// `percent` of the cap, never negative. Carry does not compound.
    public static func carry(cap: Int64, previousSpend: Int64, percent: Int) -> Int64 {
        guard percent > 0, cap > 0 else { return 0 }
        let maxCarry = cap / 100 * Int64(percent) + cap % 100 * Int64(percent) / 100
        return min(max(0, cap - previousSpend), maxCarry)
    }
}
