/// Reads token usage from provider responses into one convention (`TokenUsage`): cached and
/// cache-written input are parts of `input`, reasoning is part of `output`. Each provider counts
/// differently, and each rule below is a unit test.
public enum UsageReader {
    /// OpenAI Chat Completions `usage`: `prompt_tokens` includes `prompt_tokens_details.cached_tokens`;
    /// `completion_tokens` includes `completion_tokens_details.reasoning_tokens`. Embeddings report
    /// `prompt_tokens` only.
    public static func openAI(_ usage: JSONValue) -> TokenUsage? {
        guard let prompt = usage["prompt_tokens"]?.int64Value ?? usage["input_tokens"]?.int64Value else { return nil }
        let completion = usage["completion_tokens"]?.int64Value ?? usage["output_tokens"]?.int64Value ?? 0
        let cached =
            usage["prompt_tokens_details"]?["cached_tokens"]?.int64Value ?? usage["input_tokens_details"]?["cached_tokens"]?.int64Value ?? 0
        let reasoning =
            usage["completion_tokens_details"]?["reasoning_tokens"]?.int64Value ?? usage["output_tokens_details"]?["reasoning_tokens"]?.int64Value
            ?? 0
        return TokenUsage(
            input: max(0, prompt), output: max(0, completion), cachedInput: clamp(cached, max(0, prompt)),
            reasoning: clamp(reasoning, max(0, completion)))
    }

    /// OpenAI Responses `usage`: `input_tokens` includes `input_tokens_details.cached_tokens`, and
    /// `output_tokens` includes `output_tokens_details.reasoning_tokens`.
    public static func responses(_ usage: JSONValue) -> TokenUsage? {
        guard let input = usage["input_tokens"]?.int64Value else { return nil }
        let output = max(0, usage["output_tokens"]?.int64Value ?? 0)
        let cached = usage["input_tokens_details"]?["cached_tokens"]?.int64Value ?? 0
        let reasoning = usage["output_tokens_details"]?["reasoning_tokens"]?.int64Value ?? 0
        return TokenUsage(input: max(0, input), output: output, cachedInput: clamp(cached, max(0, input)), reasoning: clamp(reasoning, output))
    }

    /// Anthropic `usage`: `input_tokens` excludes cache reads and writes, which come separately;
    /// `cache_creation` splits the writes into 5-minute and 1-hour ones (without it, every write is
    /// a 5-minute one). Partial usage (a `message_delta` carries output only) yields zeros for what
    /// is missing.
    public static func anthropic(_ usage: JSONValue) -> TokenUsage {
        let input = max(0, usage["input_tokens"]?.int64Value ?? 0)
        let read = max(0, usage["cache_read_input_tokens"]?.int64Value ?? 0)
        var write = max(0, usage["cache_creation_input_tokens"]?.int64Value ?? 0)
        let oneHour = max(0, usage["cache_creation"]?["ephemeral_1h_input_tokens"]?.int64Value ?? 0)
        let fiveMinutes = max(0, usage["cache_creation"]?["ephemeral_5m_input_tokens"]?.int64Value ?? 0)
        // The split is authoritative when it adds up to more than the total.
        write = max(write, Money.add(oneHour, fiveMinutes))
        let output = max(0, usage["output_tokens"]?.int64Value ?? 0)
        let searches = max(0, usage["server_tool_use"]?["web_search_requests"]?.int64Value ?? 0)
        return TokenUsage(
            input: Money.add(Money.add(input, read), write), output: output, cachedInput: read, cacheWrite: write, cacheWrite1h: min(oneHour, write),
            serverToolCalls: searches)
    }

    /// Gemini `usageMetadata`: `promptTokenCount` includes `cachedContentTokenCount`;
    /// `toolUsePromptTokenCount` (tool results fed back) is input outside it; `thoughtsTokenCount` is
    /// output outside `candidatesTokenCount` (which already sums every candidate).
    public static func gemini(_ usage: JSONValue) -> TokenUsage? {
        guard usage.objectMembers != nil else { return nil }
        let prompt = max(0, usage["promptTokenCount"]?.int64Value ?? 0)
        let cached = max(0, usage["cachedContentTokenCount"]?.int64Value ?? 0)
        let toolPrompt = max(0, usage["toolUsePromptTokenCount"]?.int64Value ?? 0)
        let candidates = max(0, usage["candidatesTokenCount"]?.int64Value ?? 0)
        let thoughts = max(0, usage["thoughtsTokenCount"]?.int64Value ?? 0)
        return TokenUsage(
            input: Money.add(prompt, toolPrompt), output: Money.add(candidates, thoughts), cachedInput: min(cached, prompt), reasoning: thoughts)
    }

    static func clamp(_ part: Int64, _ whole: Int64) -> Int64 { max(0, min(part, whole)) }

    /// Responses API output items billed per call by the provider (web and file searches).
    public static func hostedToolCalls(_ output: JSONValue?) -> Int64 {
        guard let items = output?.arrayValue else { return 0 }
        return Int64(
            items.filter { item in
                guard let type = item["type"]?.stringValue else { return false }
                return type == "web_search_call" || type == "file_search_call"
            }.count)
    }
}

/// Estimates request tokens before dispatch, from the bytes of the text the request carries.
public enum TokenEstimate {
    /// About one token per three bytes of text (English averages four characters a token, code
    /// and many other scripts fewer), plus a few tokens of framing per message object.
    public static func input(
        _ scan: JSONObjectScan,
        ignoring: Set<String> = [
            "model", "stream", "max_tokens", "max_completion_tokens", "user", "metadata", "stream_options", "temperature", "top_p", "n",
        ]
    ) -> Int64 {
        var bytes = 0
        var objects = 0
        for m in scan.members where !ignoring.contains(m.key) {
            bytes += m.stringBytes
            objects += m.objectCount
        }
        return Int64((bytes + 2) / 3 + 3 * objects + 8)
    }
}
