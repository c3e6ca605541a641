import Testing

@testable import QuotaflowCore

/// The report calculators and the charging rule as pure functions: what finance reads is decided
/// here, so each branch has a number checked by hand.
@Suite struct ForecastTests {
    static let day = Forecast.dayMs
    static let period = BillingPeriod(start: 0, end: 30 * day)

    @Test func projectsTheTrailingAverageToThePeriodEnd() {
        // 10 days in, 7-day window: 700 spent in the window is 100/day; 20 days remain.
        let r = Forecast.project(spent: 1_500, recent: 700, windowStart: 3 * Self.day, period: Self.period, cap: nil, now: 10 * Self.day)
        #expect(r.dailyAverage == 100)
        #expect(r.forecast == 1_500 + 2_000)
        #expect(!r.onCourseToExceed)
        #expect(r.capReachedAt == nil)
    }

    @Test func findsWhenTheCapIsReached() {
        // 100/day from 1,500 at day 10 reaches 2,000 five days later.
        let r = Forecast.project(spent: 1_500, recent: 700, windowStart: 3 * Self.day, period: Self.period, cap: 2_000, now: 10 * Self.day)
        #expect(r.onCourseToExceed)
        #expect(r.capReachedAt == 15 * Self.day)
        // A cap beyond the period's end is not "on course to exceed".
        let safe = Forecast.project(spent: 1_500, recent: 700, windowStart: 3 * Self.day, period: Self.period, cap: 10_000, now: 10 * Self.day)
        #expect(!safe.onCourseToExceed)
        #expect(safe.capReachedAt == nil)
    }

    @Test func aCapAlreadyReachedIsReachedNowEvenWithoutRecentSpend() {
        let r = Forecast.project(spent: 2_000, recent: 0, windowStart: 3 * Self.day, period: Self.period, cap: 2_000, now: 10 * Self.day)
        #expect(r.capReachedAt == 10 * Self.day)
        #expect(r.onCourseToExceed)
        #expect(r.forecast == 2_000)
    }

    @Test func aWindowShorterThanADayCountsAsOneDay() {
        // One hour into the period: 500 spent is 500/day, not 12,000/day.
        let r = Forecast.project(spent: 500, recent: 500, windowStart: 0, period: Self.period, cap: nil, now: 3_600_000)
        #expect(r.dailyAverage == 500)
    }

    @Test func afterThePeriodEndsNothingMoreIsForecast() {
        let r = Forecast.project(spent: 900, recent: 700, windowStart: 0, period: Self.period, cap: nil, now: 31 * Self.day)
        #expect(r.forecast == 900)
    }

    @Test func subtreeSpendAddsDescendantsOnceAndSurvivesCycles() {
        let parents: [String: String?] = ["team": "division", "division": nil, "other": nil, "a": "b", "b": "a"]
        let totals = Forecast.subtreeSpend(["team": 5, "division": 7, "other": 1, "a": 3], parents: parents)
        #expect(totals["team"] == 5)
        #expect(totals["division"] == 12)
        #expect(totals["other"] == 1)
        // A damaged parent cycle ends instead of looping.
        #expect(totals["a"] == 3)
        #expect(totals["b"] == 3)
    }
}

@Suite struct SavingsTests {
    @Test func prorateIsExactAndRoundsUp() {
        #expect(Savings.prorate(30_000_000, span: Savings.monthMs) == 30_000_000)
        #expect(Savings.prorate(30_000_000, span: Savings.monthMs / 2) == 15_000_000)
        #expect(Savings.prorate(1, span: 1) == 1)
        #expect(Savings.prorate(0, span: Savings.monthMs) == 0)
        // No overflow on a large fee over a year.
        #expect(Savings.prorate(Int64.max / 1_000, span: 12 * Savings.monthMs) == Int64.max / 1_000 * 12)
    }

    @Test func comparesAgainstListPriceAndIndividualSeats() {
        let half = Savings.monthMs / 2
        let r = Savings.compute(metered: 4_000_000, listPrice: 20_000_000, seatFees: [20_000_000, 40_000_000], activeHolders: 5, span: half)
        #expect(r.meteredCost == 4_000_000)
        #expect(r.seatFees == 30_000_000)
        #expect(r.actualCost == 34_000_000)
        #expect(r.averageSeatPrice == 30_000_000)
        // Five holders at an average seat of $30 for half a month.
        #expect(r.individualSeatsBaseline == 75_000_000)
        #expect(Savings.percent(saved: r.actualCost, of: r.individualSeatsBaseline) == 54.7)
        #expect(Savings.percent(saved: r.actualCost, of: r.listPriceBaseline) == -70)
    }

    @Test func withoutSeatsThereIsNoSeatBaseline() {
        let r = Savings.compute(metered: 10, listPrice: 20, seatFees: [], activeHolders: 3, span: Savings.monthMs)
        #expect(r.averageSeatPrice == nil)
        #expect(r.individualSeatsBaseline == nil)
        #expect(Savings.percent(saved: 10, of: nil) == nil)
        #expect(Savings.percent(saved: 10, of: 0) == nil)
        #expect(Savings.percent(saved: 10, of: 20) == 50)
    }
}

@Suite struct UtilizationTests {
    static let minute: Int64 = 60_000
    static let week = 7 * Forecast.dayMs

    func resource(_ id: String, pool: String = "p", limits: ResourceLimits) -> Utilization.ResourceInfo {
        .init(id: id, poolId: pool, kind: .apiKey, limits: limits, createdAt: 0)
    }

    @Test func capacityShareIsTheTightestLimit() {
        // 10 minutes, rpm 10 → 100 requests of room; 30 requests is 0.3. tpm 1,000 → 10,000 tokens;
        // 6,000 tokens is 0.6. The share is the higher.
        let uses = (0..<30).map { i in
            ResourceUse(resourceId: "a", startedAt: Int64(i) * 1_000, finishedAt: Int64(i) * 1_000 + 500, tokens: 200, holder: "k")
        }
        let (items, pools) = Utilization.compute(
            resources: [resource("a", limits: .init(rpm: 10, tpm: 1_000)), resource("b", limits: .init())], uses: uses, transitions: [], minutes: [],
            lastUse: ["a": Self.week], from: 0, to: 10 * Self.minute, now: Self.week + Self.minute, idleDays: 7)
        let a = items.first { $0.resourceId == "a" }!
        #expect(a.requests == 30)
        #expect(a.tokens == 6_000)
        #expect(a.capacityShare == 0.6)
        // 30 half-second requests: 15 s busy of 600 s.
        #expect(a.idleMs == 10 * Self.minute - 15_000)
        #expect(a.leases == 1)
        #expect(!a.isIdle)
        let b = items.first { $0.resourceId == "b" }!
        #expect(b.capacityShare == nil)
        #expect(b.requests == 0)
        // Never used in the last 7 days (or at all): idle.
        #expect(b.isIdle)
        #expect(pools.count == 1)
        #expect(pools[0].resources == 2)
        #expect(pools[0].requests == 30)
        // Only resources with limits count toward the pool's share.
        #expect(pools[0].capacityShare == 0.6)
    }

    @Test func usageWindowsCountAgainstTheirOwnLength() {
        // A 5-hour window of 100 requests, over a 10-hour range: room for 200; 50 used is 0.25.
        let hour: Int64 = 3_600_000
        let uses = (0..<50).map { i in ResourceUse(resourceId: "s", startedAt: Int64(i) * 1_000, finishedAt: Int64(i) * 1_000, tokens: 0, holder: "h")
        }
        let (items, _) = Utilization.compute(
            resources: [resource("s", limits: .init(windows: [UsageWindow(requests: 100, windowSeconds: 5 * 3_600)]))], uses: uses, transitions: [],
            minutes: [], lastUse: [:], from: 0, to: 10 * hour, now: 10 * hour, idleDays: 7)
        #expect(items[0].capacityShare == 0.25)
    }

    @Test func stateTimeCooldownsAndAtLimitMinutesComeFromTheTrail() {
        let transitions = [
            StateTransition(resourceId: "a", at: 1 * Self.minute, from: "pending", to: "active"),
            StateTransition(resourceId: "a", at: 4 * Self.minute, from: "active", to: "cooling"),
            StateTransition(resourceId: "a", at: 5 * Self.minute, from: "cooling", to: "active"),
            // Before the range: not a cooldown in it.
            StateTransition(resourceId: "b", at: -Self.minute, from: "pending", to: "cooling"),
        ]
        let minutes = [
            MinuteCount(resourceId: "a", minute: 2, requests: 10), MinuteCount(resourceId: "a", minute: 3, requests: 9),
            MinuteCount(resourceId: "a", minute: 6, requests: 12),
        ]
        let (items, _) = Utilization.compute(
            resources: [resource("a", limits: .init(rpm: 10)), resource("b", limits: .init())], uses: [], transitions: transitions, minutes: minutes,
            lastUse: [:], from: 0, to: 10 * Self.minute, now: 10 * Self.minute, idleDays: 7)
        let a = items.first { $0.resourceId == "a" }!
        #expect(a.stateMs == ["pending": Self.minute, "active": 8 * Self.minute, "cooling": Self.minute])
        #expect(a.cooldowns == 1)
        #expect(a.atLimitMinutes == 2)
        let b = items.first { $0.resourceId == "b" }!
        #expect(b.cooldowns == 0)
        #expect(b.stateMs == ["cooling": 10 * Self.minute])
    }

    @Test func overlappingRequestsAreBusyOnceAndHolderChangesAreLeases() {
        let uses = [
            ResourceUse(resourceId: "s", startedAt: 0, finishedAt: 10_000, tokens: 1, holder: "alice"),
            ResourceUse(resourceId: "s", startedAt: 5_000, finishedAt: 15_000, tokens: 1, holder: "alice"),
            ResourceUse(resourceId: "s", startedAt: 20_000, finishedAt: 30_000, tokens: 1, holder: "bob"),
            ResourceUse(resourceId: "s", startedAt: 40_000, finishedAt: 50_000, tokens: 1, holder: "alice"),
        ]
        let (items, _) = Utilization.compute(
            resources: [resource("s", limits: .init())], uses: uses.reversed(), transitions: [], minutes: [], lastUse: [:], from: 0,
            to: Self.minute, now: Self.minute, idleDays: 7)
        // Busy 0–15 s, 20–30 s, 40–50 s: 35 s of 60.
        #expect(items[0].idleMs == 25_000)
        #expect(items[0].leases == 3)
    }
}

@Suite struct ChargeRuleTests {
    @Test func reportedUsageIsChargedAsReported() {
        let c = ChargeRule.charge(.init(status: 200, usage: TokenUsage(input: 10, output: 5)), estimatedInput: 999)
        #expect(c == .init(usage: TokenUsage(input: 10, output: 5), worstCase: false, flag: nil))
    }

    @Test func aFinishedAnswerWithoutUsageIsChargedTheWorstCaseButRecordsOnlyWhatWasSeen() {
        let c = ChargeRule.charge(.init(status: 200, usage: nil, seenOutput: 7), estimatedInput: 999)
        #expect(c.worstCase)
        #expect(c.flag == .usageMissing)
        #expect(c.usage == TokenUsage(output: 7))
    }

    @Test func aBrokenOffAnswerIsEstimatedFromItsPartsAndWhatWasSeen() {
        // Nothing reported: the input estimate and the output seen.
        let none = ChargeRule.charge(.init(status: 499, usage: nil, brokeOff: true, seenOutput: 12), estimatedInput: 300)
        #expect(none == .init(usage: TokenUsage(input: 300, output: 12), worstCase: false, flag: .usageEstimated))
        // Anthropic's message_start input is kept; output is the larger of reported and seen.
        let part = ChargeRule.charge(
            .init(status: 502, usage: TokenUsage(input: 40, output: 1, cacheWrite: 8), brokeOff: true, seenOutput: 12), estimatedInput: 300)
        #expect(part.usage == TokenUsage(input: 40, output: 12, cacheWrite: 8))
        #expect(part.flag == .usageEstimated)
        #expect(!part.worstCase)
    }

    @Test func aRefusalWithoutUsageCostsNothing() {
        for status in [400, 401, 429, 500, 503] {
            #expect(
                ChargeRule.charge(.init(status: status, usage: nil), estimatedInput: 300) == .init(usage: TokenUsage(), worstCase: false, flag: nil))
        }
        // An error answer that did report usage is charged it.
        #expect(ChargeRule.charge(.init(status: 400, usage: TokenUsage(input: 3)), estimatedInput: 300).usage == TokenUsage(input: 3))
    }
}
