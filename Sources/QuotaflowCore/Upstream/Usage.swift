/// Reads token usage from provider responses.
public enum UsageReader {
    /// OpenAI `usage`: `prompt_tokens` (cached included), `completion_tokens`,
    /// `prompt_tokens_details.cached_tokens`.
    public static func openAI(_ usage: JSONValue) -> TokenUsage? {
        guard let prompt = usage["prompt_tokens"]?.int64Value ?? usage["input_tokens"]?.int64Value else { return nil }
        let completion = usage["completion_tokens"]?.int64Value ?? usage["output_tokens"]?.int64Value ?? 0
        let cached =
            usage["prompt_tokens_details"]?["cached_tokens"]?.int64Value ?? usage["input_tokens_details"]?["cached_tokens"]?.int64Value ?? 0
        return TokenUsage(input: max(0, prompt), output: max(0, completion), cachedInput: max(0, cached))
    }

    /// Anthropic `usage`: `input_tokens` excludes cache reads and writes, which come separately.
    /// Partial usage (a `message_delta` carries output only) yields zeros for what is missing.
    public static func anthropic(_ usage: JSONValue) -> TokenUsage {
        let input = usage["input_tokens"]?.int64Value ?? 0
        let read = usage["cache_read_input_tokens"]?.int64Value ?? 0
        let write = usage["cache_creation_input_tokens"]?.int64Value ?? 0
        let output = usage["output_tokens"]?.int64Value ?? 0
        let searches = usage["server_tool_use"]?["web_search_requests"]?.int64Value ?? 0
        return TokenUsage(
            input: max(0, input) + max(0, read) + max(0, write), output: max(0, output), cachedInput: max(0, read), cacheWrite: max(0, write),
            serverToolCalls: max(0, searches))
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
