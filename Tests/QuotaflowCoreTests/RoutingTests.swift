import Testing

@testable import QuotaflowCore

@Suite struct RoutingTests {
    @Test func loadIsTheHighestUtilization() {
        let limits = ResourceLimits(maxConcurrency: 4, rpm: 100, tpm: 1000, windows: [UsageWindow(requests: 10, windowSeconds: 18_000)])
        #expect(
            Routing.loadScore(ResourceLoad(inFlight: 1, requestsLastMinute: 10, tokensLastMinute: 100, windowRequests: [2]), limits: limits) == 0.25)
        #expect(
            Routing.loadScore(ResourceLoad(inFlight: 1, requestsLastMinute: 10, tokensLastMinute: 900, windowRequests: [2]), limits: limits) == 0.9)
        #expect(Routing.loadScore(ResourceLoad(inFlight: 0, windowRequests: [5]), limits: limits) == 0.5)
        #expect(Routing.loadScore(ResourceLoad(inFlight: 50), limits: ResourceLimits()) == 0)
    }

    @Test func roomUnderEveryLimit() {
        let limits = ResourceLimits(maxConcurrency: 2, rpm: 3, tpm: 100, windows: [UsageWindow(requests: 5, windowSeconds: 60)])
        #expect(
            Routing.hasRoom(ResourceLoad(inFlight: 1, requestsLastMinute: 2, tokensLastMinute: 50, windowRequests: [4]), limits: limits, tokens: 50))
        #expect(!Routing.hasRoom(ResourceLoad(inFlight: 2), limits: limits, tokens: 1))
        #expect(!Routing.hasRoom(ResourceLoad(requestsLastMinute: 3), limits: limits, tokens: 1))
        #expect(!Routing.hasRoom(ResourceLoad(tokensLastMinute: 60), limits: limits, tokens: 50))
        #expect(!Routing.hasRoom(ResourceLoad(windowRequests: [5]), limits: limits, tokens: 1))
        // An empty token window always admits one request, however large.
        #expect(Routing.hasRoom(ResourceLoad(), limits: limits, tokens: 500))
    }

    @Test func leastLoadedWins() {
        let c = [Routing.Candidate(score: 0.5), Routing.Candidate(score: 0.1), Routing.Candidate(score: 0.3)]
        #expect(Routing.choose(c, rotation: 7)?.index == 1)
    }

    @Test func tiesGoToTheCheaperThenRoundRobin() {
        let seat = Routing.Candidate(score: 0.2, marginalRank: 0)
        let key = Routing.Candidate(score: 0.2, marginalRank: 10_000)
        #expect(Routing.choose([key, seat], rotation: 0)?.index == 1)
        #expect(Routing.choose([key, seat], rotation: 1)?.index == 1)
        let twins = [Routing.Candidate(score: 0), Routing.Candidate(score: 0), Routing.Candidate(score: 0)]
        #expect(Set((0..<6).map { Routing.choose(twins, rotation: UInt64($0))!.index }) == [0, 1, 2])
    }

    @Test func degradedComesLastAndHoldersKeepTheirSeat() {
        let degraded = Routing.Candidate(score: 0, degraded: true)
        let busy = Routing.Candidate(score: 0.9)
        #expect(Routing.choose([degraded, busy], rotation: 0)?.index == 1)
        let held = Routing.Candidate(score: 0.8, heldByHolder: true)
        #expect(Routing.choose([Routing.Candidate(score: 0), held], rotation: 0)?.index == 1)
        #expect(Routing.choose([], rotation: 0) == nil)
    }

    @Test func chargingRules() {
        let plain = Charging.Facts(tenantId: "t", chain: ["team", "div"], keyId: "k", resourceId: "r")
        #expect(Charging.budgetCounters(plain) == [.key("k"), .project("team"), .project("div"), .tenant("t")])
        #expect(Charging.upstreamCounters(plain) == [.resource("r")])
        let fallback = Charging.Facts(
            tenantId: "t", chain: ["team", "div"], seatId: "s", resourceId: "r", overage: .fallback, overageProjectId: "div")
        #expect(Charging.budgetCounters(fallback) == [.seat("s"), .project("team"), .projectFallback("div"), .tenant("t")])
        let overflow = Charging.Facts(
            tenantId: "t", chain: ["team"], keyId: "k", resourceId: "o", overflow: true, overage: .overflow, overageProjectId: "team")
        #expect(Charging.budgetCounters(overflow) == [.key("k")])
        #expect(Charging.upstreamCounters(overflow) == [.overflowCredit("o"), .projectOverflow("team")])
    }

    @Test func modelPatterns() {
        #expect(ModelPattern.matches(pattern: "gpt-4.1*", "gpt-4.1-mini"))
        #expect(ModelPattern.matches(pattern: "claude-*-4-5", "claude-sonnet-4-5"))
        #expect(!ModelPattern.matches(pattern: "claude-*-4-5", "claude-sonnet-4-6"))
        #expect(ModelPattern.matches(pattern: "*", "anything"))
        #expect(!ModelPattern.matches(pattern: "gpt-4.1", "gpt-4.1-mini"))
        #expect(ModelPattern.allowed("x", by: []))
        #expect(!ModelPattern.allowed("x", by: ["y*"]))
    }
}
