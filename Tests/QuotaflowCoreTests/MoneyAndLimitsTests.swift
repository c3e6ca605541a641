import Foundation
import Testing

@testable import QuotaflowCore

@Suite struct MoneyAndLimitsTests {
    @Test func costIsExactAndRoundsUp() {
        let sonnet = TokenPrice(inputPerMTok: 3_000_000, outputPerMTok: 15_000_000)
        #expect(Money.cost(TokenUsage(input: 1_000_000, output: 0), at: sonnet) == 3_000_000)
        #expect(Money.cost(TokenUsage(input: 1, output: 0), at: sonnet) == 3)
        #expect(Money.cost(TokenUsage(input: 0, output: 1), at: TokenPrice(inputPerMTok: 0, outputPerMTok: 1)) == 1)
        #expect(Money.cost(TokenUsage(input: 1000, output: 500), at: sonnet) == 3_000 + 7_500)
        let cached = TokenPrice(inputPerMTok: 2_000_000, outputPerMTok: 8_000_000, cachedInputPerMTok: 500_000)
        #expect(Money.cost(TokenUsage(input: 1_000_000, output: 0, cachedInput: 400_000), at: cached) == 1_200_000 + 200_000)
        #expect(TokenPrice(inputPerMTok: 5_000_000, outputPerMTok: 0).cacheWritePerMTok == 6_250_000)
        #expect(Money.cost(TokenUsage(input: Int64.max, output: Int64.max), at: sonnet) == Int64.max)
    }

    @Test func pricingTablePrefersExactThenLongestPattern() {
        let table = PricingTable(entries: PricingTable.listPrices)
        #expect(table.price(for: "gpt-4.1")?.outputPerMTok == 8_000_000)
        #expect(table.price(for: "gpt-4.1-mini")?.outputPerMTok == 1_600_000)
        #expect(table.price(for: "claude-opus-4-5")?.inputPerMTok == 5_000_000)
        #expect(table.price(for: "gpt-5.4-pro")?.outputPerMTok == 180_000_000)
        #expect(table.price(for: "unknown-model") == nil)
        let withDefault = PricingTable(entries: [], defaultPrice: TokenPrice(inputPerMTok: 1, outputPerMTok: 2))
        #expect(withDefault.price(for: "anything")?.outputPerMTok == 2)
    }

    @Test func gcraAllowsABurstThenTheRate() {
        var g = GCRA()
        for _ in 0..<10 { #expect(g.attempt(now: 0, limit: 10, periodMs: 60_000) == nil) }
        let wait = g.attempt(now: 0, limit: 10, periodMs: 60_000)
        #expect(wait == 6_000)
        #expect(g.attempt(now: 5_999, limit: 10, periodMs: 60_000) != nil)
        #expect(g.attempt(now: 6_000, limit: 10, periodMs: 60_000) == nil)
        #expect(g.remaining(now: 6_000, limit: 10, periodMs: 60_000) == 0)
        #expect(g.remaining(now: 66_000, limit: 10, periodMs: 60_000) == 10)
    }

    @Test func gcraCostsAndRefunds() {
        var g = GCRA()
        #expect(g.attempt(now: 0, limit: 1000, periodMs: 60_000, cost: 800) == nil)
        #expect(g.attempt(now: 0, limit: 1000, periodMs: 60_000, cost: 300) != nil)
        g.refund(limit: 1000, periodMs: 60_000, cost: 500)
        #expect(g.attempt(now: 0, limit: 1000, periodMs: 60_000, cost: 300) == nil)
    }

    @Test func slidingCounterForgetsOldSeconds() {
        var c = SlidingCounter()
        c.add(5, nowMs: 1_000)
        c.add(3, nowMs: 30_000)
        #expect(c.total(nowMs: 30_500) == 8)
        #expect(c.total(nowMs: 61_000) == 3)
        #expect(c.total(nowMs: 200_000) == 0)
    }

    func ms(_ text: String) -> Int64 { Timestamp.parse(text)! }

    @Test func periodsFollowTheAnchorDayAndTimeZone() {
        let utc15 = PeriodAnchor(day: 15, timeZone: "UTC")
        let p = BillingPeriod.containing(ms("2026-11-21T10:00:00Z"), anchor: utc15)
        #expect(p.start == ms("2026-11-15T00:00:00Z"))
        #expect(p.end == ms("2026-12-15T00:00:00Z"))
        let before = BillingPeriod.containing(ms("2026-11-14T23:59:59Z"), anchor: utc15)
        #expect(before.start == ms("2026-10-15T00:00:00Z"))
        let tokyo = BillingPeriod.containing(ms("2026-11-30T16:00:00Z"), anchor: PeriodAnchor(day: 1, timeZone: "Asia/Tokyo"))
        // 16:00 UTC on Nov 30 is already Dec 1 in Tokyo.
        #expect(tokyo.start == ms("2026-11-30T15:00:00Z"))
        let newYork = BillingPeriod.containing(ms("2026-03-10T12:00:00Z"), anchor: PeriodAnchor(day: 1, timeZone: "America/New_York"))
        #expect(newYork.start == ms("2026-03-01T05:00:00Z"))
        #expect(newYork.end == ms("2026-04-01T04:00:00Z"))
        let january = BillingPeriod.containing(ms("2027-01-02T00:00:00Z"), anchor: PeriodAnchor(day: 5, timeZone: "UTC"))
        #expect(january.start == ms("2026-12-05T00:00:00Z"))
    }

    @Test func rolloverIsCappedAndNeverNegative() {
        #expect(BillingPeriod.carry(cap: 1000, previousSpend: 500, percent: 25) == 250)
        #expect(BillingPeriod.carry(cap: 1000, previousSpend: 900, percent: 25) == 100)
        #expect(BillingPeriod.carry(cap: 1000, previousSpend: 1500, percent: 25) == 0)
        #expect(BillingPeriod.carry(cap: 1000, previousSpend: 0, percent: 0) == 0)
    }

    @Test func rateLimitHeaders() {
        let now: Int64 = 1_000_000
        let retry = RateLimitInfo.parse([("Retry-After", "7")], nowMs: now)
        #expect(retry.resetAt == now + 7_000)
        let openai = RateLimitInfo.parse(
            [
                ("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "1m30s"), ("x-ratelimit-reset-tokens", "6ms"),
                ("x-ratelimit-limit-requests", "500"),
            ], nowMs: now)
        #expect(openai.resetAt == now + 90_000)
        #expect(openai.limitRequests == 500)
        let anthropic = RateLimitInfo.parse(
            [("anthropic-ratelimit-tokens-remaining", "0"), ("anthropic-ratelimit-tokens-reset", "1970-01-01T00:20:00Z")], nowMs: now)
        #expect(anthropic.resetAt == 1_200_000)
        #expect(RateLimitInfo.parse([("content-type", "x")], nowMs: now).resetAt == nil)
        #expect(RateLimitInfo.parseDuration("2h") == 7_200_000)
        #expect(RateLimitInfo.parseDuration("abc") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777_000)
    }

    @Test func timestampsRoundTrip() {
        for ms: Int64 in [0, 1, 999, 1_700_000_000_123, 4_102_444_800_000, -86_400_000] {
            #expect(Timestamp.parse(Timestamp.format(ms)) == ms)
        }
        #expect(Timestamp.parse("2026-11-21T10:00:00+02:00") == Timestamp.parse("2026-11-21T08:00:00Z"))
        #expect(Timestamp.parse("2026-02-30T00:00:00Z") == nil)
        #expect(Timestamp.parse("yesterday") == nil)
        #expect(Timestamp.parse("2026-11-21") == Timestamp.parse("2026-11-21T00:00:00Z"))
        // More than three fractional digits (found by schemathesis: it used to trap).
        #expect(Timestamp.parse("0013-12-12T21:58:35.9322+00:41") == Timestamp.parse("0013-12-12T21:17:35.932Z"))
        #expect(Timestamp.parse("2026-11-21T10:00:00.5Z") == Timestamp.parse("2026-11-21T10:00:00.500Z"))
    }
}
