import Testing

@testable import QuotaflowCore

@Suite struct HealthMachineTests {
    let pass = ProbeOutcome(ok: true, reason: "passed")
    let fail = ProbeOutcome(ok: false, reason: "401 from upstream: the key was refused")

    func step(_ s: ResourceState, _ o: ProbeOutcome, _ c: HealthCounters = .init(), hold: Bool = false) -> HealthMachine.Decision {
        HealthMachine.next(state: s, manualHold: hold, counters: c, outcome: o, admissionProbes: 2, suspendAfter: 3)
    }

    @Test func admissionNeedsNPassesInARow() {
        let first = step(.pending, pass)
        #expect(first.state == .verifying)
        let second = step(first.state, pass, first.counters)
        #expect(second.state == .active)
        #expect(second.cause == "admitted after 2 passing probes")
    }

    @Test func admissionFailureRejectsWithTheProbeReason() {
        let d = step(.verifying, fail, HealthCounters(consecutiveOK: 1))
        #expect(d.state == .rejected)
        #expect(d.cause == fail.reason)
    }

    @Test func flappingGoesDegradedSuspendedAndBack() {
        var d = step(.active, fail)
        #expect(d.state == .degraded)
        d = step(d.state, fail, d.counters)
        #expect(d.state == .degraded)
        d = step(d.state, fail, d.counters)
        #expect(d.state == .suspended)
        d = step(d.state, fail, d.counters)
        #expect(d.state == .suspended && d.cause == nil)
        d = step(d.state, pass, d.counters)
        #expect(d.state == .active)
    }

    @Test func coolingGetsAHalfOpenProbe() {
        #expect(step(.cooling, pass).state == .active)
        #expect(step(.cooling, fail).state == .cooling)
    }

    @Test func peopleWinOverProbes() {
        #expect(step(.suspended, pass, hold: true).state == .suspended)
        #expect(step(.revoked, pass).state == .revoked)
        #expect(step(.active, fail, hold: true).state == .active)
    }
}

@Suite struct StreamMeterTests {
    func feed(_ meter: inout StreamMeter, _ chunks: [String]) -> (String, Bool) {
        var out = ""
        var terminal = false
        for c in chunks {
            let (bytes, t) = Array(c.utf8).withUnsafeBytes { meter.feed($0) }
            out += String(decoding: bytes, as: UTF8.self)
            terminal = terminal || t
        }
        return (out, terminal)
    }

    @Test func openAIUsageIsReadAndTheAddedChunkDropped() {
        var meter = StreamMeter(format: .chatCompletions, dropUsageChunk: true)
        let chunks = [
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[],\"model\":\"gpt-4.1-2025\",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":",  // split mid-event
            "2,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\ndata: [DONE]\n\n",
        ]
        let (out, terminal) = feed(&meter, chunks)
        #expect(terminal)
        #expect(meter.usage == TokenUsage(input: 10, output: 2, cachedInput: 4))
        #expect(meter.servedModel == "gpt-4.1-2025")
        #expect(!out.contains("prompt_tokens"))
        #expect(out.hasSuffix("data: [DONE]\n\n"))
        #expect(out.contains("\"Hi\""))
    }

    @Test func usageChunkKeptWhenTheClientAskedForIt() {
        var meter = StreamMeter(format: .chatCompletions, dropUsageChunk: false)
        let (out, _) = feed(&meter, ["data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\r\n\r\n"])
        #expect(out.contains("prompt_tokens"))
    }

    @Test func anthropicUsageMergesStartAndDelta() {
        var meter = StreamMeter(format: .anthropic, dropUsageChunk: false)
        let chunks = [
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":20,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"delta\":{\"text\":\"a\"}}\n\nevent: content_block_delta\ndata: {\"delta\":{\"text\":\"b\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n",
        ]
        let (_, t1) = feed(&meter, chunks)
        #expect(!t1)
        #expect(meter.deltas == 2)
        #expect(meter.usage == TokenUsage(input: 25, output: 7, cachedInput: 5))
        let (_, t2) = feed(&meter, ["event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"])
        #expect(t2)
        #expect(meter.servedModel == "claude-x")
    }

    @Test func splitterKeepsPartialEvents() {
        var s = SSESplitter()
        #expect(Array("data: a".utf8).withUnsafeBytes { s.feed($0) }.isEmpty)
        let events = Array("\n\ndata: b\n\ndata: c".utf8).withUnsafeBytes { s.feed($0) }
        #expect(events.map { String(decoding: $0, as: UTF8.self) } == ["data: a\n\n", "data: b\n\n"])
        #expect(String(decoding: s.flush(), as: UTF8.self) == "data: c")
    }

    @Test func tokenEstimateCountsTextNotFraming() throws {
        let small = Array(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.utf8)
        let big = Array(("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + String(repeating: "word ", count: 3000) + "\"}]}").utf8)
        let a = try small.withUnsafeBytes { TokenEstimate.input(try JSONObjectScan.scan($0)) }
        let b = try big.withUnsafeBytes { TokenEstimate.input(try JSONObjectScan.scan($0)) }
        #expect(a < 20)
        #expect(b >= 5000 && b <= 5100)
    }
}

@Suite struct FieldTests {
    @Test func readerNamesTheFieldInErrors() throws {
        let r = try ObjectReader(["budget": ["monthly_cap_micros": "lots"]])
        do {
            _ = try r.optional("budget", Budget.converter)
            Issue.record("expected an error")
        } catch let e as FieldError {
            #expect(e.field == "budget.monthly_cap_micros")
            #expect(e.message.contains("integer"))
        }
    }

    @Test func unknownFieldsAreRejected() throws {
        let r = try ObjectReader(["nmae": "x"])
        #expect(throws: FieldError.self) { try r.rejectUnknown(["name"]) }
    }

    @Test func budgetValidation() throws {
        #expect(throws: FieldError.self) { try Budget.read(["overage_policy": "fallback_model"], field: "budget") }
        #expect(throws: FieldError.self) { try Budget.read(["period": ["time_zone": "Mars/Olympus"]], field: "budget") }
        #expect(throws: FieldError.self) { try Budget.read(["period": ["day": 31]], field: "budget") }
        let b = try Budget.read(["monthly_cap_micros": 5, "alert_thresholds": [90, 50, 90]], field: "budget")
        #expect(b.alertThresholds == [50, 90])
        #expect(try Budget.read(b.json(), field: "b") == b)
    }

    @Test func cipherRoundTripsAndBindsContext() throws {
        let cipher = try CredentialCipher(encodedKey: CredentialCipher.generateEncodedKey())
        let sealed = try cipher.seal("sk-secret", context: "resource:a")
        #expect(try cipher.open(sealed, context: "resource:a") == "sk-secret")
        #expect(throws: CredentialCipher.CipherError.self) { try cipher.open(sealed, context: "resource:b") }
        let other = try CredentialCipher(encodedKey: CredentialCipher.generateEncodedKey())
        #expect(!other.verify(checkValue: try cipher.makeCheckValue()))
        #expect(throws: CredentialCipher.CipherError.self) { try CredentialCipher(encodedKey: "short") }
    }

    @Test func secretsHaveThePrefixAndDigest() {
        let k = SecretKind.projectKey.generate()
        #expect(k.hasPrefix("qf_pk_") && k.count == 46)
        #expect(SecretDigest.of(k).count == 64)
        #expect(SecretDigest.displayPrefix(k).count == 12)
        #expect(credentialHint("sk-abcdefghijklmnop") == "…mnop")
    }

    @Test func manualClockWakesSleepers() async throws {
        let clock = ManualClock(nowMs: 0)
        async let slept: Void = clock.sleep(untilMs: 500)
        while clock.sleeperCount == 0 { await Task.yield() }
        clock.advance(byMs: 499)
        #expect(clock.sleeperCount == 1)
        clock.advance(byMs: 1)
        try await slept
        #expect(clock.sleeperCount == 0)
    }
}
