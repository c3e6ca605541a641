/// Everything about one request that multiplies its cost, known before dispatch.
///
/// The worst case that admission reserves and that `max_cost_micros` checks comes from this shape
/// alone, so each dialect states its multipliers here once: choices (`n`), the output cap of each,
/// and the provider's own billed tools (web search, bounded by `max_uses`) with the input they add.
public struct CostShape: Sendable, Equatable {
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

    public init(inputTokens: Int64, outputCap: Int64, choices: Int64 = 1, toolCalls: Int64 = 0, toolInputTokens: Int64 = 0) {
        self.inputTokens = inputTokens
        self.outputCap = outputCap
        self.choices = choices
        self.toolCalls = toolCalls
        self.toolInputTokens = toolInputTokens
    }

    /// The largest usage the request can report.
    public var worstUsage: TokenUsage {
        TokenUsage(
            input: Money.add(inputTokens, toolInputTokens), output: Money.mul(outputCap, max(1, choices)), serverToolCalls: toolCalls)
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

/// The provider's own tools that a request can switch on, and the worst case they add.
public enum ServerTools {
    /// `max_uses` set on a web tool that came without one, so its fees are bounded.
    public static let defaultMaxUses: Int64 = 10
    /// Input tokens reserved for the results of one web search (the provider adds them to the prompt).
    public static let inputPerSearch: Int64 = 10_000
    /// Input tokens reserved for one fetched page when the tool sets no `max_content_tokens`.
    public static let inputPerFetch: Int64 = 100_000

    /// The bounds an Anthropic `tools` array implies, and the array rewritten when a web tool lacked
    /// `max_uses` (it is then set to `defaultMaxUses`).
    public struct Bounds: Sendable, Equatable {
        public var toolCalls: Int64 = 0
        public var toolInputTokens: Int64 = 0
        /// `nil` when the array is forwarded as sent.
        public var rewritten: JSONValue?

        public init(toolCalls: Int64 = 0, toolInputTokens: Int64 = 0, rewritten: JSONValue? = nil) {
            self.toolCalls = toolCalls
            self.toolInputTokens = toolInputTokens
            self.rewritten = rewritten
        }
    }

    /// Reads Anthropic server tools: `web_search_*` (billed per search, results added to the input)
    /// and `web_fetch_*` (pages added to the input). Client tools cost nothing extra.
    public static func anthropic(_ tools: JSONValue) throws(FieldError) -> Bounds {
        guard case .array(let items) = tools else { throw FieldError("tools", "must be an array") }
        var bounds = Bounds()
        var changed = false
        var out: [JSONValue] = []
        for (i, item) in items.enumerated() {
            guard case .object(var members) = item, let type = item["type"]?.stringValue,
                type.hasPrefix("web_search_") || type.hasPrefix("web_fetch_")
            else {
                out.append(item)
                continue
            }
            var uses: Int64
            if let v = item["max_uses"], !v.isNull {
                guard let n = v.int64Value, n >= 1, n <= 1_000 else { throw FieldError("tools[\(i)].max_uses", "must be an integer from 1 to 1000") }
                uses = n
            } else {
                uses = defaultMaxUses
                members.removeAll { $0.0 == "max_uses" }
                members.append(("max_uses", .int(uses)))
                changed = true
            }
            if type.hasPrefix("web_search_") {
                bounds.toolCalls = Money.add(bounds.toolCalls, uses)
                bounds.toolInputTokens = Money.add(bounds.toolInputTokens, Money.mul(uses, inputPerSearch))
            } else {
                var perPage = inputPerFetch
                if let v = item["max_content_tokens"], !v.isNull {
                    guard let n = v.int64Value, n >= 1 else { throw FieldError("tools[\(i)].max_content_tokens", "must be a positive integer") }
                    perPage = n
                }
                bounds.toolInputTokens = Money.add(bounds.toolInputTokens, Money.mul(uses, perPage))
            }
            out.append(.object(members))
        }
        if changed { bounds.rewritten = .array(out) }
        return bounds
    }
}
