/// What pooling saved, against list-price keys and against one seat per active holder.
public enum Savings {
    public static let monthMs: Int64 = 30 * Forecast.dayMs

    public struct Result: Sendable, Equatable {
        public var actualCost: Int64
        public var meteredCost: Int64
        public var seatFees: Int64
        public var listPriceBaseline: Int64
        public var averageSeatPrice: Int64?
        public var individualSeatsBaseline: Int64?
    }

    /// `metered` is the ledger's marginal cost, `listPrice` its tokens at the tenant's prices,
    /// `seatFees` the monthly fees of the seats in service during the span.
    public static func compute(metered: Int64, listPrice: Int64, seatFees: [Int64], activeHolders: Int64, span: Int64) -> Result {
        let seatCost = seatFees.map { prorate($0, span: span) }.reduce(0, +)
        let averageSeat = seatFees.isEmpty ? nil : seatFees.reduce(0, +) / Int64(seatFees.count)
        return Result(
            actualCost: metered + seatCost, meteredCost: metered, seatFees: seatCost, listPriceBaseline: listPrice, averageSeatPrice: averageSeat,
            individualSeatsBaseline: averageSeat.map { prorate($0 * activeHolders, span: span) })
    }

    /// `(baseline - actual) / baseline` in percent with one decimal, or `nil` without a baseline.
    public static func percent(saved actual: Int64, of baseline: Int64?) -> Double? {
        guard let baseline, baseline > 0 else { return nil }
        return (Double(baseline - actual) / Double(baseline) * 1000).rounded() / 10
    }

    /// `monthly × span / month`, rounded up, in 128-bit intermediate arithmetic so that a large fee
    /// over a long range cannot trap (a result past `Int64.max` is clamped to it).
    public static func prorate(_ monthly: Int64, span: Int64) -> Int64 {
        guard monthly > 0, span > 0 else { return 0 }
        let product = monthly.multipliedFullWidth(by: span)
        guard product.high < monthMs / 2 else { return .max }
        let (quotient, remainder) = monthMs.dividingFullWidth(product)
        return remainder == 0 ? quotient : quotient + 1
    }
}
