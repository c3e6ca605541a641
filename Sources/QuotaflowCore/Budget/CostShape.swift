/// Everything about one request that multiplies its cost, known before dispatch.
///
/// The worst case that admission reserves and that `max_cost_micros` checks comes from this shape
/// alone, so each dialect states its multipliers here once: choices (`n`, `candidateCount`), the
/// output cap of each and the thinking a cap does not cover, prompt-cache writes (priced above
/// plain input), and the provider's own billed tools (web search, bounded by `max_uses` or
/// `max_tool_calls`) with the input they add.
public struct CostShape: Sendable, Equatable {
    /// Whether the request may write its prompt to a provider's cache, and for how long.
    public enum CacheWrite: Sendable, Equatable {
        case none, fiveMinutes, oneHour
    }

    /// Prompt tokens, estimated from the request's bytes.
    public var inputTokens: Int64
    /// Output tokens allowed per choice: the clamped `max_tokens`, or the assumed cap.
    public var outputCap: Int64
    /// Choices generated from one prompt (OpenAI `n`); each is billed its own output.
    public var choices: Int64
    /// At most this many provider-billed tool calls (web searches).
    public var toolCalls: Int64
    /// Input that the provider's own tools may add in total (search results, fetched pages).
    public var toolInputTokens: Int64
    /// Thinking per choice that the output cap does not include (Gemini's thoughts).
    public var reasoningPerChoice: Int64
    /// The whole prompt may be written to a cache at the write price.
    public var cacheWrite: CacheWrite

    public init(
        inputTokens: Int64, outputCap: Int64, choices: Int64 = 1, toolCalls: Int64 = 0, toolInputTokens: Int64 = 0, reasoningPerChoice: Int64 = 0,
        cacheWrite: CacheWrite = .none
    ) {
        self.inputTokens = inputTokens
        self.outputCap = outputCap
        self.choices = choices
        self.toolCalls = toolCalls
        self.toolInputTokens = toolInputTokens
        self.reasoningPerChoice = reasoningPerChoice
        self.cacheWrite = cacheWrite
    }

    /// The largest usage the request can report.
    public var worstUsage: TokenUsage {
        let input = Money.add(inputTokens, toolInputTokens)
        let written = cacheWrite == .none ? 0 : input
        return TokenUsage(
            input: input, output: Money.mul(Money.add(outputCap, reasoningPerChoice), max(1, choices)), cacheWrite: written,
            cacheWrite1h: cacheWrite == .oneHour ? written : 0, reasoning: Money.mul(reasoningPerChoice, max(1, choices)), serverToolCalls: toolCalls)
    }

    /// Tokens counted against token-rate limits and usage windows before the answer is known.
    public var worstTokens: Int64 {
        let u = worstUsage
        return Money.add(u.input, u.output)
    }

    /// The worst case at `price`, in micro-USD.
    public func worstCost(at price: TokenPrice) -> Int64 { Money.cost(worstUsage, at: price) }

    /// What drives the worst case, for messages: "8,192 output tokens × 3 choices, 5 web searches".
    public var explanation: String {
        var parts = ["\(Self.grouped(outputCap)) output tokens" + (choices > 1 ? " × \(choices) choices" : "")]
        if reasoningPerChoice > 0 { parts.append("\(Self.grouped(reasoningPerChoice)) thinking tokens" + (choices > 1 ? " each" : "")) }
        if cacheWrite != .none { parts.append("the prompt written to the \(cacheWrite == .oneHour ? "1-hour" : "5-minute") cache") }
        if toolCalls > 0 { parts.append("\(toolCalls) billed tool call\(toolCalls == 1 ? "" : "s")") }
        return parts.joined(separator: ", ")
    }

    /// `8192` → `8,192`.
    public static func grouped(_ n: Int64) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}
