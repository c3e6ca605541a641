import Testing

@testable import QuotaflowCore

/// The pure pieces behind the hardening: worst cases, redaction, refusal classes, egress, probes.
@Suite struct WorstCaseTests {
    let price = TokenPrice(inputPerMTok: 2_000_000, outputPerMTok: 8_000_000)

    @Test func choicesMultiplyOutputButNotInput() {
        let one = CostShape(inputTokens: 1000, outputCap: 500)
        let three = CostShape(inputTokens: 1000, outputCap: 500, choices: 3)
        #expect(one.worstCost(at: price) == 2_000 + 4_000)
        #expect(three.worstCost(at: price) == 2_000 + 3 * 4_000)
        #expect(three.worstTokens == 1000 + 1500)
        #expect(three.explanation == "500 output tokens × 3 choices")
    }

    @Test func toolCallsAddTheirFeeAndTheirInput() {
        let shape = CostShape(inputTokens: 1000, outputCap: 500, toolCalls: 5, toolInputTokens: 50_000)
        // 51,000 input at $2/M, 500 output at $8/M, 5 searches at $10 per 1,000.
        #expect(shape.worstCost(at: price) == 102_000 + 4_000 + 50_000)
        #expect(shape.worstCost(at: price.withToolCallFee(25_000)) == 102_000 + 4_000 + 125_000)
        #expect(shape.explanation == "500 output tokens, 5 billed tool calls")
    }

    @Test func settledToolCallsAreCharged() {
        #expect(Money.cost(TokenUsage(serverToolCalls: 3), at: price) == 30_000)
        #expect(UsageReader.anthropic(["input_tokens": 10, "output_tokens": 5, "server_tool_use": ["web_search_requests": 2]]).serverToolCalls == 2)
    }

    @Test func webToolsWithoutMaxUsesAreClampedAndBounded() throws {
        let tools: JSONValue = [
            ["name": "get_weather", "input_schema": ["type": "object"]],
            ["type": "web_search_20250305", "name": "web_search"],
            ["type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 2, "max_content_tokens": 5_000],
        ]
        let b = try ServerTools.anthropic(tools)
        #expect(b.toolCalls == ServerTools.defaultMaxUses)
        #expect(b.toolInputTokens == ServerTools.defaultMaxUses * ServerTools.inputPerSearch + 2 * 5_000)
        let rewritten = try #require(b.rewritten?.arrayValue)
        #expect(rewritten[1]["max_uses"] == .int(ServerTools.defaultMaxUses))
        #expect(rewritten[0] == tools.arrayValue![0] && rewritten[2] == tools.arrayValue![2])
        // Bounded tools are forwarded as sent.
        let bounded = try ServerTools.anthropic([["type": "web_search_20250305", "name": "web_search", "max_uses": 3]])
        #expect(bounded.rewritten == nil && bounded.toolCalls == 3)
        #expect(throws: FieldError.self) { try ServerTools.anthropic([["type": "web_search_20250305", "max_uses": 0]]) }
        #expect(throws: FieldError.self) { try ServerTools.anthropic("not an array") }
    }

    @Test func roomAtFollowsTheOldestSeconds() {
        var c = SlidingCounter()
        c.add(2, nowMs: 10_000)
        c.add(3, nowMs: 30_000)
        // 5 requests, limit 5: the two from second 10 leave at second 70.
        #expect(c.roomAt(1, limit: 5, nowMs: 40_000) == 70_000)
        #expect(c.roomAt(1, limit: 6, nowMs: 40_000) == 40_000)
        // Room for 4 more means the second-30 bucket must go too.
        #expect(c.roomAt(4, limit: 5, nowMs: 40_000) == 90_000)
    }
}

@Suite struct RedactionTests {
    let secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"

    func scrub(_ text: String, secrets: [String]? = nil) -> String { SecretRedactor(secrets: secrets ?? [secret]).redact(text) }

    @Test func wholeSecretsPrefixesSuffixesAndMaskedSidesAreRedacted() {
        let r = scrub(#"{"error":{"message":"Incorrect API key provided: \#(secret)."}}"#)
        #expect(!r.contains("AbCdEfGh") && r.contains(String(repeating: "*", count: secret.count)))
        // A masked form whose sides are 16 characters or more.
        let masked = "sk-proj-AbCdEfGhIjKl" + "…" + "MnOpQrStUvWxYz0123456789"
        let m = scrub("key \(masked) refused")
        #expect(!m.contains("AbCdEfGhIjKl") && !m.contains("QrStUvWxYz0123456789") && m.contains("…"))
        // Runs shorter than 16 characters stay (they cannot identify the key).
        #expect(scrub("sk-proj-AbCdEfG is short") == "sk-proj-AbCdEfG is short")
    }

    @Test func bytesWithoutAMatchAreUntouched() {
        let body = #"{"id":"chatcmpl-9xYzQWERTYUIOPASDFGH","choices":[]}"#
        #expect(SecretRedactor(secrets: [secret]).redacted(Array(body.utf8).withUnsafeBytes { $0 }) == nil)
        #expect(scrub(body) == body)
    }

    @Test func shortSecretsAreRedactedWhole() {
        #expect(scrub("token=abcd1234xyz!", secrets: ["abcd1234xyz"]) == "token=***********!")
    }

    @Test func aMatchSplitAcrossChunksIsRedacted() {
        let text = "data: {\"error\":\"bad key \(secret)\"}\n\n"
        let bytes = Array(text.utf8)
        for cut in stride(from: 1, to: bytes.count, by: 3) {
            var stream = StreamRedactor(SecretRedactor(secrets: [secret]))
            var out = stream.feed(Array(bytes[..<cut]))
            out += stream.feed(Array(bytes[cut...]))
            out += stream.finish()
            let s = String(decoding: out, as: UTF8.self)
            #expect(s.count == text.count && !s.contains("AbCdEfGhIj") && !s.contains("UvWxYz0123"), "cut at \(cut): \(s)")
        }
    }

    @Test func eventsAreNotHeldBack() {
        var stream = StreamRedactor(SecretRedactor(secrets: [secret]))
        let event = Array("data: {\"choices\":[{\"delta\":{\"content\":\"HelloWorldHelloWorld\"}}]}\n\n".utf8)
        #expect(stream.feed(event) == event)
    }
}

@Suite struct UpstreamRefusalTests {
    func classify(_ status: Int, _ body: String) -> UpstreamRefusal { UpstreamRefusal.classify(status: status, body: Array(body.utf8)) }

    @Test func credentialRefusals() {
        #expect(classify(401, #"{"error":{"code":"invalid_api_key"}}"#) == .credential)
        #expect(classify(403, "") == .credential)
    }

    @Test func routesModelsAndObjects() {
        #expect(classify(404, "<html>404 Not Found</html>") == .route)
        #expect(classify(404, "") == .route)
        #expect(classify(404, #"{"error":{"message":"Invalid URL (POST /v1/chat/completion)","type":"invalid_request_error"}}"#) == .route)
        #expect(classify(404, #"{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}"#) == .route)
        #expect(classify(404, #"{"error":{"message":"The model `gpt-9` does not exist","code":"model_not_found"}}"#) == .model)
        #expect(classify(404, #"{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}"#) == .model)
        #expect(
            classify(404, #"{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}"#) == .model)
        #expect(classify(404, #"{"error":{"message":"Response with id 'resp_123' not found.","type":"invalid_request_error"}}"#) == .request)
        #expect(classify(400, #"{"error":{"message":"bad"}}"#) == .request)
    }
}

@Suite struct EgressPolicyTests {
    func verdict(_ ip: String, allowPrivate: Bool = false) -> String? {
        EgressPolicy(allowPrivate: allowPrivate).refusal(for: EgressPolicy.parseIP(ip)!)
    }

    @Test func metadataAndLinkLocalAreAlwaysRefused() {
        for ip in [
            "169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "100.100.100.200", "0.0.0.0", "::", "224.0.0.1", "::ffff:169.254.169.254",
        ] {
            #expect(verdict(ip, allowPrivate: true) != nil, "\(ip)")
        }
    }

    @Test func privateRangesNeedTheOperator() {
        for ip in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "::1", "fd12:3456::1", "100.64.0.1", "::ffff:10.0.0.1"] {
            #expect(verdict(ip) != nil, "\(ip)")
            #expect(verdict(ip, allowPrivate: true) == nil, "\(ip)")
        }
    }

    @Test func publicAddressesPass() {
        for ip in ["104.18.6.192", "8.8.8.8", "2606:4700::6812:6c0", "172.32.0.1"] { #expect(verdict(ip) == nil, "\(ip)") }
    }

    @Test func addressesFormatAsTheyAreWritten() {
        for ip in ["fe80::1", "fd00:ec2::254", "::1", "::", "2606:4700::6812:6c0", "1:2:3:4:5:6:7:8", "169.254.169.254"] {
            #expect(EgressPolicy.format(EgressPolicy.parseIP(ip)!) == ip)
        }
    }

    @Test func urlTargets() {
        #expect(URLTarget("https://api.openai.com/v1") == URLTarget("https://API.openai.com:443/v1/"))
        #expect(URLTarget("http://[::1]:8080/v1")?.literalAddress == EgressPolicy.parseIP("::1"))
        #expect(URLTarget("http://user:pw@10.0.0.1:81/x")?.host == "10.0.0.1")
        #expect(URLTarget("http://h:99999") == nil)
        #expect(URLTarget("ftp://h") == nil)
    }
}

@Suite struct ProbeOutcomeTests {
    func step(_ s: ResourceState, _ o: ProbeOutcome) -> HealthMachine.Decision {
        HealthMachine.next(state: s, manualHold: false, counters: .init(), outcome: o, admissionProbes: 2, suspendAfter: 3)
    }

    @Test func aRateLimitedAdmissionWaitsForTheReset() {
        let limited = ProbeOutcome(ok: false, reason: "429", status: 429, rateLimitedUntil: 1_000_000)
        let d = step(.pending, limited)
        #expect(d.state == .pending && d.counters == HealthCounters())
        #expect(d.cause?.contains("trying again at") == true)
        #expect(step(.verifying, limited).state == .verifying)
        #expect(step(.active, limited).state == .cooling)
    }

    @Test func aRefusedCredentialSuspendsAResourceInService() {
        let refused = ProbeOutcome(ok: false, reason: "401 from upstream: the key was refused", status: 401, credentialRefused: true)
        #expect(step(.active, refused).state == .suspended)
        #expect(step(.degraded, refused).state == .suspended)
        #expect(step(.pending, refused).state == .rejected)
    }

    @Test func credentialHintsNeverShowMoreThanAQuarter() {
        #expect(credentialHint("sk-abcdefghijklmnop") == "…mnop")
        #expect(credentialHint("abcdefgh") == "…gh")
        #expect(credentialHint("abc") == "…")
    }
}
