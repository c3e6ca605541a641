/// The provider's own tools that a request can switch on, and the worst case they add.
public enum ServerTools {
    /// `max_uses` set on a web tool that came without one, so its fees are bounded.
    public static let defaultMaxUses: Int64 = 10
    /// Input tokens reserved for the results of one web search (the provider adds them to the prompt).
    public static let inputPerSearch: Int64 = 10_000
    /// Input tokens reserved for one fetched page when the tool sets no `max_content_tokens`.
    public static let inputPerFetch: Int64 = 100_000

    /// The bounds a request's tools imply, and the members to rewrite so that they hold: an
    /// Anthropic `tools` array whose web tool lacked `max_uses`, or a Responses `max_tool_calls`.
    public struct Bounds: Sendable, Equatable {
        public var toolCalls: Int64 = 0
        public var toolInputTokens: Int64 = 0
        /// `nil` when the array is forwarded as sent.
        public var rewritten: JSONValue?
        /// Set when the request must carry `max_tool_calls` (it had hosted tools and no bound).
        public var setMaxToolCalls: Int64?

        public init(toolCalls: Int64 = 0, toolInputTokens: Int64 = 0, rewritten: JSONValue? = nil, setMaxToolCalls: Int64? = nil) {
            self.toolCalls = toolCalls
            self.toolInputTokens = toolInputTokens
            self.rewritten = rewritten
            self.setMaxToolCalls = setMaxToolCalls
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

    /// Responses API hosted tools billed per call (web and file search) share `max_tool_calls`, the
    /// bound on every hosted call of one response; a request with such tools and no bound is given
    /// `defaultMaxUses`. Hosted tools whose cost no field bounds (code-interpreter containers billed
    /// per session, image generation billed per image) are refused. Function, custom, shell and
    /// MCP tools cost tokens only.
    public static func responses(_ tools: JSONValue, maxToolCalls: JSONValue?) throws(FieldError) -> Bounds {
        guard case .array(let items) = tools else { throw FieldError("tools", "must be an array") }
        var billed = false
        for (i, item) in items.enumerated() {
            guard let type = item["type"]?.stringValue else { continue }
            if type.hasPrefix("web_search") || type.hasPrefix("file_search") {
                billed = true
            } else if type.hasPrefix("code_interpreter") || type.hasPrefix("image_generation") {
                throw FieldError(
                    "tools[\(i)].type", "'\(type)' is billed per container or image with no bound a request can set, so the pool does not offer it")
            }
        }
        guard billed else { return Bounds() }
        var calls = defaultMaxUses
        var set: Int64? = calls
        if let v = maxToolCalls, !v.isNull {
            guard let n = v.int64Value, n >= 1, n <= 1_000 else { throw FieldError("max_tool_calls", "must be an integer from 1 to 1000") }
            calls = n
            set = nil
        }
        return Bounds(toolCalls: calls, toolInputTokens: Money.mul(calls, inputPerSearch), setMaxToolCalls: set)
    }

    /// Gemini grounding tools: Google Search is billed per prompt (per query on newer models), and
    /// its results, like URL context, come back as tool-use input. Neither has a request-side
    /// bound, so `defaultMaxUses` searches are reserved; the ledger charges what was reported.
    public static func gemini(_ tools: JSONValue) throws(FieldError) -> Bounds {
        guard case .array(let items) = tools else { throw FieldError("tools", "must be an array") }
        var bounds = Bounds()
        for item in items {
            if item["googleSearch"] != nil || item["googleSearchRetrieval"] != nil || item["google_search"] != nil {
                bounds.toolCalls = Money.add(bounds.toolCalls, defaultMaxUses)
                bounds.toolInputTokens = Money.add(bounds.toolInputTokens, Money.mul(defaultMaxUses, inputPerSearch))
            }
            if item["urlContext"] != nil || item["url_context"] != nil {
                bounds.toolInputTokens = Money.add(bounds.toolInputTokens, Money.mul(defaultMaxUses, inputPerSearch))
            }
        }
        return bounds
    }
}
