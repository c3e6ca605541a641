import Testing

@testable import QuotaflowCore

/// Each provider counts tokens its own way; these are the inclusion rules, one per dialect, and
/// the worst cases that come from the new multipliers. No token may be counted twice or missed.
@Suite struct DialectUsageTests {
    @Test func responsesOutputIncludesReasoningAndInputIncludesCached() throws {
        let u = try JSONParser.parse(
            Array(
                #"{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1024},"output_tokens":310,"output_tokens_details":{"reasoning_tokens":256},"total_tokens":1510}"#
                    .utf8))
        #expect(UsageReader.responses(u) == TokenUsage(input: 1200, output: 310, cachedInput: 1024, reasoning: 256))
        // Details may be null; a missing usage is none at all.
        #expect(UsageReader.responses(["input_tokens": 5, "output_tokens": 1, "input_tokens_details": .null]) == TokenUsage(input: 5, output: 1))
        #expect(UsageReader.responses(["output_tokens": 1]) == nil)
    }

    @Test func chatCompletionsCountsReasoningInsideCompletionTokens() {
        let u: JSONValue = [
            "prompt_tokens": 100, "completion_tokens": 50, "prompt_tokens_details": ["cached_tokens": 40],
            "completion_tokens_details": ["reasoning_tokens": 30],
        ]
        #expect(UsageReader.openAI(u) == TokenUsage(input: 100, output: 50, cachedInput: 40, reasoning: 30))
        // A part larger than its whole is clamped, never counted twice.
        #expect(UsageReader.openAI(["prompt_tokens": 10, "prompt_tokens_details": ["cached_tokens": 99]])?.cachedInput == 10)
    }

    @Test func anthropicInputExcludesTheCacheAndSplitsWritesByLifetime() {
        let u: JSONValue = [
            "input_tokens": 1200, "cache_read_input_tokens": 5000, "cache_creation_input_tokens": 300,
            "cache_creation": ["ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200], "output_tokens": 7,
        ]
        #expect(UsageReader.anthropic(u) == TokenUsage(input: 6500, output: 7, cachedInput: 5000, cacheWrite: 300, cacheWrite1h: 200))
        // Without the split every write is a 5-minute one.
        #expect(UsageReader.anthropic(["input_tokens": 1, "cache_creation_input_tokens": 300]).cacheWrite1h == 0)
    }

    @Test func geminiThoughtsAreOutsideCandidatesAndToolPromptsOutsideThePrompt() {
        let u: JSONValue = [
            "promptTokenCount": 8, "candidatesTokenCount": 11, "thoughtsTokenCount": 1103, "totalTokenCount": 1122,
        ]
        #expect(UsageReader.gemini(u) == TokenUsage(input: 8, output: 1114, reasoning: 1103))
        let cachedAndTools: JSONValue = [
            "promptTokenCount": 1200, "cachedContentTokenCount": 1024, "toolUsePromptTokenCount": 50, "candidatesTokenCount": 40,
        ]
        #expect(UsageReader.gemini(cachedAndTools) == TokenUsage(input: 1250, output: 40, cachedInput: 1024))
        #expect(UsageReader.gemini(.null) == nil)
    }

    @Test func cachePricesFollowTheProvidersRulesAndRoundUp() {
        let p = TokenPrice(inputPerMTok: 3_000_001, outputPerMTok: 15_000_000)
        #expect(p.cachedInputPerMTok == 300_001 && p.cacheWritePerMTok == 3_750_002 && p.cacheWrite1hPerMTok == 6_000_002)
        let sonnet = TokenPrice(inputPerMTok: 3_000_000, outputPerMTok: 15_000_000)
        // Claude Code's own arithmetic for in=1200, read=5000, 5m=100, 1h=200, out=7: $0.00678.
        let usage = TokenUsage(input: 1200 + 5000 + 300, output: 7, cachedInput: 5000, cacheWrite: 300, cacheWrite1h: 200)
        #expect(Money.cost(usage, at: sonnet) == 6780)
        #expect(TokenPrice(inputPerMTok: 1_000_000, outputPerMTok: 0).scaled(by: 2).cacheWrite1hPerMTok == 4_000_000)
    }

    @Test func worstCasesCoverCacheWritesThinkingAndCandidates() {
        let price = TokenPrice(inputPerMTok: 1_000_000, outputPerMTok: 10_000_000)
        let plain = CostShape(inputTokens: 1000, outputCap: 100)
        #expect(plain.worstCost(at: price) == 1000 + 1000)
        var oneHour = plain
        oneHour.cacheWrite = .oneHour
        #expect(oneHour.worstCost(at: price) == 2000 + 1000)
        var fiveMinutes = plain
        fiveMinutes.cacheWrite = .fiveMinutes
        #expect(fiveMinutes.worstCost(at: price) == 1250 + 1000)
        let thinking = CostShape(inputTokens: 1000, outputCap: 100, choices: 2, reasoningPerChoice: 500)
        #expect(thinking.worstUsage.output == 1200 && thinking.worstCost(at: price) == 1000 + 12_000)
        #expect(thinking.explanation.contains("500 thinking tokens each"))
    }

    @Test func byteSearchesFindMembersAtAnyDepthButNotInsideStrings() {
        let body = Array(#"{"system":[{"type":"text","text":"say \"cache_control\": now","cache_control":{"type":"ephemeral","ttl": "1h"}}]}"#.utf8)
        #expect(JSONBytes.containsKey("cache_control", in: body))
        #expect(JSONBytes.containsMember("ttl", string: "1h", in: body))
        let text = Array(#"{"messages":[{"content":"the key \"cache_control\": {} and \"ttl\":\"1h\""}]}"#.utf8)
        #expect(!JSONBytes.containsKey("cache_control", in: text) && !JSONBytes.containsMember("ttl", string: "1h", in: text))
    }

    @Test func hostedResponsesToolsAreBoundedOrRefused() throws {
        let search = try ServerTools.responses([["type": "function", "name": "f"], ["type": "web_search"]], maxToolCalls: nil)
        #expect(search.toolCalls == 10 && search.setMaxToolCalls == 10 && search.toolInputTokens == 100_000)
        let bounded = try ServerTools.responses([["type": "file_search"]], maxToolCalls: 3)
        #expect(bounded.toolCalls == 3 && bounded.setMaxToolCalls == nil)
        #expect(try ServerTools.responses([["type": "namespace", "tools": []], ["type": "custom"]], maxToolCalls: nil) == .init())
        #expect(throws: FieldError.self) { try ServerTools.responses([["type": "image_generation"]], maxToolCalls: nil) }
        #expect(throws: FieldError.self) { try ServerTools.responses([["type": "web_search"]], maxToolCalls: 0) }
    }
}

@Suite struct NewStreamMeterTests {
    func feed(_ format: StreamFormat, _ text: String) -> StreamMeter {
        var meter = StreamMeter(format: format)
        let bytes = Array(text.utf8)
        // In two pieces, split mid-event.
        let half = bytes.count / 2
        _ = bytes[..<half].withUnsafeBytes { meter.feed($0) }
        _ = bytes[half...].withUnsafeBytes { meter.feed($0) }
        _ = meter.flush()
        return meter
    }

    @Test func responsesStreamsYieldTheIdUsageAndHostedCalls() {
        let text =
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5.4\",\"usage\":null}}\n\n"
            + "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n"
            + "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5.4-2026\","
            + "\"output\":[{\"type\":\"web_search_call\"},{\"type\":\"message\"}],\"usage\":{\"input_tokens\":10,\"output_tokens\":4,"
            + "\"output_tokens_details\":{\"reasoning_tokens\":2}}}}\n\n"
        let m = feed(.responses, text)
        #expect(m.responseId == "resp_1" && m.servedModel == "gpt-5.4-2026" && m.sawTerminal && m.sawOutput && !m.sawError)
        #expect(m.usage == TokenUsage(input: 10, output: 4, reasoning: 2, serverToolCalls: 1))
        #expect(m.deltas == 1)
    }

    @Test func aFailedResponseIsTerminalAndAnError() {
        let m = feed(
            .responses,
            "data: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\",\"error\":{\"code\":\"server_error\"}}}\n\n"
        )
        #expect(m.sawTerminal && m.sawError)
        let preamble = feed(.responses, "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n")
        #expect(!preamble.sawOutput && !preamble.sawTerminal)
    }

    @Test func geminiUsageIsCumulativeAndTheLastChunkEndsTheStream() {
        let chunk = { (text: String, candidates: Int, finish: Bool) in
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\(text)\"}]}\(finish ? ",\"finishReason\":\"STOP\"" : "")}],"
                + "\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":\(candidates),\"thoughtsTokenCount\":2042},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n"
        }
        let m = feed(.gemini, chunk("Okay", 49, false) + chunk(" more", 97, false) + chunk(" Enjoy!", 101, true))
        // The last snapshot counts, never the sum of chunks.
        #expect(m.usage == TokenUsage(input: 4, output: 101 + 2042, reasoning: 2042))
        #expect(m.sawTerminal && m.servedModel == "gemini-2.5-flash")
        let error = feed(.gemini, "data: {\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}\r\n\r\n")
        #expect(error.sawError && !error.sawTerminal)
    }
}
