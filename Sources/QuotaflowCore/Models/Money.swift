/// Per-token prices in integer micro-USD per one million tokens.
///
/// Prompt-cache prices default to the providers' rules relative to the input price: reads at 0.1×,
/// 5-minute writes at 1.25×, 1-hour writes at 2× (each rounded up to the micro-USD).
public struct TokenPrice: Sendable, Equatable, Codable {
    public var inputPerMTok: Int64
    public var outputPerMTok: Int64
    /// Price of cached (prompt-cache read) input tokens.
    public var cachedInputPerMTok: Int64
    /// Price of input tokens written to a prompt cache that lives 5 minutes (Anthropic's default).
    public var cacheWritePerMTok: Int64
    /// Price of input tokens written to a prompt cache that lives 1 hour.
    public var cacheWrite1hPerMTok: Int64
    /// Fee per server-side tool call billed by the provider (web search), in micro-USD. Not part of a
    /// model's row in the pricing table: it comes from the tenant's `tool_call_price_micros` setting.
    public var toolCallMicros: Int64

    /// $10 per 1,000 web searches, the providers' list fee.
    public static let defaultToolCallMicros: Int64 = 10_000

    public init(
        inputPerMTok: Int64, outputPerMTok: Int64, cachedInputPerMTok: Int64? = nil, cacheWritePerMTok: Int64? = nil,
        cacheWrite1hPerMTok: Int64? = nil, toolCallMicros: Int64 = TokenPrice.defaultToolCallMicros
    ) {
        self.inputPerMTok = inputPerMTok
        self.outputPerMTok = outputPerMTok
        self.cachedInputPerMTok = cachedInputPerMTok ?? Self.scaled(inputPerMTok, 1, 10)
        self.cacheWritePerMTok = cacheWritePerMTok ?? Self.scaled(inputPerMTok, 5, 4)
        self.cacheWrite1hPerMTok = cacheWrite1hPerMTok ?? Money.mul(inputPerMTok, 2)
        self.toolCallMicros = toolCallMicros
    }

    /// `price × numerator / denominator`, rounded up, without overflowing.
    public static func scaled(_ price: Int64, _ numerator: Int64, _ denominator: Int64) -> Int64 {
        let whole = Money.mul(price / denominator, numerator)
        let rest = price % denominator * numerator
        return Money.add(whole, rest / denominator + (rest % denominator == 0 ? 0 : 1))
    }

    /// Every token price multiplied by `factor` (a premium service tier); the tool fee stays.
    public func scaled(by factor: Int64) -> TokenPrice {
        TokenPrice(
            inputPerMTok: Money.mul(inputPerMTok, factor), outputPerMTok: Money.mul(outputPerMTok, factor),
            cachedInputPerMTok: Money.mul(cachedInputPerMTok, factor), cacheWritePerMTok: Money.mul(cacheWritePerMTok, factor),
            cacheWrite1hPerMTok: Money.mul(cacheWrite1hPerMTok, factor), toolCallMicros: toolCallMicros)
    }

    /// The same token prices with another tool-call fee.
    public func withToolCallFee(_ micros: Int64) -> TokenPrice {
        var p = self
        p.toolCallMicros = micros
        return p
    }
}

/// Token counts reported by an upstream, in one convention for every dialect: `cachedInput` and
/// `cacheWrite` are parts of `input`, `cacheWrite1h` is the part of `cacheWrite` kept for an hour,
/// and `reasoning` is the part of `output` spent thinking (billed as output).
public struct TokenUsage: Sendable, Equatable, Codable {
    public var input: Int64
    public var output: Int64
    /// Input read from a prompt cache.
    public var cachedInput: Int64
    /// Input written to a prompt cache (both lifetimes).
    public var cacheWrite: Int64
    /// The part of `cacheWrite` written to the 1-hour cache.
    public var cacheWrite1h: Int64
    /// The part of `output` that was reasoning (thinking) tokens.
    public var reasoning: Int64
    /// Server-side tool calls the provider bills per call (web searches).
    public var serverToolCalls: Int64

    public init(
        input: Int64 = 0, output: Int64 = 0, cachedInput: Int64 = 0, cacheWrite: Int64 = 0, cacheWrite1h: Int64 = 0, reasoning: Int64 = 0,
        serverToolCalls: Int64 = 0
    ) {
        self.input = input
        self.output = output
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.cacheWrite1h = cacheWrite1h
        self.reasoning = reasoning
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
        let written1h = max(0, min(usage.cacheWrite1h, written))
        let uncached = max(0, usage.input - cached - written)
        let parts = [
            mul(uncached, price.inputPerMTok), mul(cached, price.cachedInputPerMTok), mul(written - written1h, price.cacheWritePerMTok),
            mul(written1h, price.cacheWrite1hPerMTok), mul(max(0, usage.output), price.outputPerMTok),
            mul(mul(max(0, usage.serverToolCalls), price.toolCallMicros), 1_000_000),
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
