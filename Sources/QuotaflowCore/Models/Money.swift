/// Per-token prices in integer micro-USD per one million tokens.
public struct TokenPrice: Sendable, Equatable, Codable {
    public var inputPerMTok: Int64
    public var outputPerMTok: Int64
    /// Price of cached (prompt-cache read) input tokens; defaults to the input price.
    public var cachedInputPerMTok: Int64
    /// Price of input tokens written to a prompt cache; defaults to 1.25 × the input price.
    public var cacheWritePerMTok: Int64
    /// Fee per server-side tool call billed by the provider (web search), in micro-USD. Not part of a
    /// model's row in the pricing table: it comes from the tenant's `tool_call_price_micros` setting.
    public var toolCallMicros: Int64

    /// $10 per 1,000 web searches, the providers' list fee.
    public static let defaultToolCallMicros: Int64 = 10_000

    public init(
        inputPerMTok: Int64, outputPerMTok: Int64, cachedInputPerMTok: Int64? = nil, cacheWritePerMTok: Int64? = nil,
        toolCallMicros: Int64 = TokenPrice.defaultToolCallMicros
    ) {
        self.inputPerMTok = inputPerMTok
        self.outputPerMTok = outputPerMTok
        self.cachedInputPerMTok = cachedInputPerMTok ?? inputPerMTok
        self.cacheWritePerMTok = cacheWritePerMTok ?? (inputPerMTok / 4 * 5 + (inputPerMTok % 4) * 5 / 4)
        self.toolCallMicros = toolCallMicros
    }

    /// The same token prices with another tool-call fee.
    public func withToolCallFee(_ micros: Int64) -> TokenPrice {
        var p = self
        p.toolCallMicros = micros
        return p
    }
}

/// Token counts reported by an upstream. `cachedInput` and `cacheWrite` are parts of `input`.
public struct TokenUsage: Sendable, Equatable, Codable {
    public var input: Int64
    public var output: Int64
    /// Input read from a prompt cache.
    public var cachedInput: Int64
    /// Input written to a prompt cache.
    public var cacheWrite: Int64
    /// Server-side tool calls the provider bills per call (web searches).
    public var serverToolCalls: Int64

    public init(input: Int64 = 0, output: Int64 = 0, cachedInput: Int64 = 0, cacheWrite: Int64 = 0, serverToolCalls: Int64 = 0) {
        self.input = input
        self.output = output
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.serverToolCalls = serverToolCalls
    }

    public var total: Int64 { input + output }
}

/// Exact integer money math. Costs round up to the next micro-USD so the ledger never under-counts.
public enum Money {
    /// Cost of `usage` at `price`, in micro-USD, rounded up. Saturates instead of overflowing.
    public static func cost(_ usage: TokenUsage, at price: TokenPrice) -> Int64 {
        let cached = max(0, min(usage.cachedInput, usage.input))
        let written = max(0, min(usage.cacheWrite, usage.input - cached))
        let uncached = max(0, usage.input - cached - written)
        let parts = [
            mul(uncached, price.inputPerMTok), mul(cached, price.cachedInputPerMTok), mul(written, price.cacheWritePerMTok),
            mul(max(0, usage.output), price.outputPerMTok), mul(mul(max(0, usage.serverToolCalls), price.toolCallMicros), 1_000_000),
        ]
        var total: Int64 = 0
        for p in parts {
            let (sum, overflow) = total.addingReportingOverflow(p)
            total = overflow ? Int64.max : sum
        }
        if total == Int64.max { return Int64.max }
        return total / 1_000_000 + (total % 1_000_000 == 0 ? 0 : 1)
    }

    public static func mul(_ a: Int64, _ b: Int64) -> Int64 {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? Int64.max : product
    }

    /// Saturating addition for counters.
    public static func add(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? Int64.max : Int64.min) : sum
    }

    /// "$12.34" style rendering, for messages only.
    public static func format(_ micros: Int64) -> String {
        let negative = micros < 0
        let m = micros.magnitude
        let dollars = m / 1_000_000
        let cents = (m % 1_000_000) / 10_000
        let rest = m % 10_000
        var s = "$\(dollars).\(cents < 10 ? "0" : "")\(cents)"
        if rest != 0 {
            let frac = String(m % 1_000_000)
            s = "$\(dollars)." + String(repeating: "0", count: 6 - frac.count) + frac
        }
        return negative ? "-" + s : s
    }
}
