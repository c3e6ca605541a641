/// Decimal US dollars as written in a policy file, converted to micro-USD exactly: the scalar's own
/// text is read digit by digit, never through a floating-point number.
public enum DecimalUSD {
    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case notADecimal
        case tooManyDecimals
        case tooLarge

        public var description: String {
            switch self {
            case .notADecimal: return "must be an amount in US dollars such as 8000.00 (digits, an optional point and up to 6 decimals)"
            case .tooManyDecimals: return "has more than 6 decimals; amounts are kept in millionths of a dollar"
            case .tooLarge: return "is too large"
            }
        }
    }

    /// `"8000.00"` → 8,000,000,000. No sign, no exponent, no separators; at most 6 decimals.
    public static func micros(_ text: String) throws(Invalid) -> Int64 {
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let whole = parts.first, !whole.isEmpty else { throw .notADecimal }
        let fraction: [UInt8] = parts.count == 2 ? Array(parts[1]) : []
        if parts.count == 2 && fraction.isEmpty { throw .notADecimal }
        guard whole.allSatisfy(isDigit), fraction.allSatisfy(isDigit) else { throw .notADecimal }
        guard fraction.count <= 6 else { throw .tooManyDecimals }
        var value: Int64 = 0
        for d in whole {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(d - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw .tooLarge }
            value = s
        }
        var micros: Int64 = 0
        var scale: Int64 = 100_000
        for d in fraction {
            micros += Int64(d - UInt8(ascii: "0")) * scale
            scale /= 10
        }
        let (m, o1) = value.multipliedReportingOverflow(by: 1_000_000)
        let (s, o2) = m.addingReportingOverflow(micros)
        guard !o1, !o2 else { throw .tooLarge }
        return s
    }

    /// 8,000,000,000 → `"8000.00"`: at least two decimals, more only when the amount has them.
    public static func text(_ micros: Int64) -> String {
        let negative = micros < 0
        let magnitude = micros.magnitude
        let whole = magnitude / 1_000_000
        var fraction = String(magnitude % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.count > 2 && fraction.hasSuffix("0") { fraction.removeLast() }
        return (negative ? "-" : "") + "\(whole).\(fraction)"
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}
