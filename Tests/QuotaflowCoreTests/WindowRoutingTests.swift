import Testing

@testable import QuotaflowCore

/// Subscription windows read from real header sets, and the routing policy over them: the
/// threshold, the urgency formula, sessions that stick and move, passthrough kept apart.
@Suite struct WindowRoutingTests {
    static let now = AdmissionEngineTests.now
    static let hour: Int64 = 3_600_000

    // MARK: headers

    @Test func readsAnthropicUnifiedWindowsWithTheirResets() {
        let reset5h = (Self.now + 2 * Self.hour) / 1000
        let reset7d = (Self.now + 50 * Self.hour) / 1000
        let headers = [
            ("Anthropic-Ratelimit-Unified-5h-Utilization", "0.42"), ("anthropic-ratelimit-unified-5h-reset", "\(reset5h)"),
            ("anthropic-ratelimit-unified-5h-status", "allowed"), ("anthropic-ratelimit-unified-7d-utilization", "0.3"),
            ("anthropic-ratelimit-unified-7d-reset", "\(reset7d)"), ("anthropic-ratelimit-unified-7d_sonnet-utilization", "0.5"),
            ("anthropic-ratelimit-unified-7d_sonnet-reset", "\(reset7d)"), ("anthropic-ratelimit-unified-status", "allowed"),
            ("anthropic-ratelimit-unified-representative-claim", "five_hour"), ("anthropic-ratelimit-unified-fallback-percentage", "0.5"),
            ("content-type", "application/json"),
        ]
        let report = WindowHeaders.parse(headers, nowMs: Self.now)
        #expect(
            report.readings == [
                WindowReading(seconds: 18_000, utilization: 0.42, resetsAt: reset5h * 1000),
                WindowReading(seconds: 604_800, utilization: 0.3, resetsAt: reset7d * 1000),
                WindowReading(seconds: 604_800, scope: "sonnet", utilization: 0.5, resetsAt: reset7d * 1000),
            ])
        #expect(report.status == "allowed")
        #expect(report.limitedUntil == nil)
        #expect(report.readings.map(\.label) == ["5h", "7d", "7d_sonnet"])
        #expect(
            WindowHeaders.mayCarryWindows("Anthropic-Ratelimit-Unified-5h-Utilization")
                && WindowHeaders.mayCarryWindows("X-Codex-Primary-Used-Percent"))
        #expect(!WindowHeaders.mayCarryWindows("anthropic-ratelimit-requests-limit") && !WindowHeaders.mayCarryWindows("x-codex"))
    }

    @Test func aRejectedAnthropicWindowLimitsUntilTheLatestRefusingReset() {
        let reset5h = (Self.now + 2 * Self.hour) / 1000
        let reset7d = (Self.now + 70 * Self.hour) / 1000
        let headers = [
            ("anthropic-ratelimit-unified-status", "rejected"), ("anthropic-ratelimit-unified-5h-status", "rejected"),
            ("anthropic-ratelimit-unified-5h-utilization", "1.0"), ("anthropic-ratelimit-unified-5h-reset", "\(reset5h)"),
            ("anthropic-ratelimit-unified-7d-utilization", "0.6"), ("anthropic-ratelimit-unified-7d-reset", "\(reset7d)"),
            ("anthropic-ratelimit-unified-reset", "\(reset5h)"),
        ]
        let report = WindowHeaders.parse(headers, nowMs: Self.now)
        #expect(report.limitedUntil == reset5h * 1000)
        // Both windows refusing: the longer reset decides, even days away.
        let both = headers + [("anthropic-ratelimit-unified-7d-status", "rejected")]
        #expect(WindowHeaders.parse(both, nowMs: Self.now).limitedUntil == reset7d * 1000)
        // A used-up model-family window leaves the credential's other models usable: no window limit.
        let family = [
            ("anthropic-ratelimit-unified-status", "rejected"), ("anthropic-ratelimit-unified-7d_opus-status", "rejected"),
            ("anthropic-ratelimit-unified-7d_opus-utilization", "1.0"), ("anthropic-ratelimit-unified-7d_opus-reset", "\(reset7d)"),
            ("anthropic-ratelimit-unified-5h-utilization", "0.2"), ("anthropic-ratelimit-unified-5h-reset", "\(reset5h)"),
        ]
        let familyReport = WindowHeaders.parse(family, nowMs: Self.now)
        #expect(familyReport.limitedUntil == nil)
        var set = WindowSet()
        set.merge(familyReport, now: Self.now)
        #expect(WindowPolicy().refusingUntil(set, now: Self.now) == nil)
        // Over 100% but still allowed (overage): not a refusal.
        let overage = WindowHeaders.parse(
            [
                ("anthropic-ratelimit-unified-status", "allowed"), ("anthropic-ratelimit-unified-5h-utilization", "1.02"),
                ("anthropic-ratelimit-unified-5h-reset", "\(reset5h)"),
            ], nowMs: Self.now)
        #expect(overage.limitedUntil == nil && !overage.readings[0].rejected)
    }

    @Test func aRefusalWithoutAResetCountsForAMinuteAndDriftingResetsAreOnePeriod() {
        let noReset = WindowHeaders.parse(
            [("x-codex-primary-used-percent", "100"), ("x-codex-primary-window-minutes", "300")], nowMs: Self.now)
        var set = WindowSet()
        set.merge(noReset, now: Self.now)
        #expect(WindowPolicy().refusingUntil(set, now: Self.now) == Self.now + 60_000)
        #expect(WindowPolicy().refusingUntil(set, now: Self.now + 60_001) == nil)
        // Codex's "seconds until reset" moves with each answer's latency: the same period keeps one reset.
        var drifting = WindowSet()
        for (i, after) in [600, 599, 601, 598].enumerated() {
            let at = Self.now + Int64(i) * 1_500
            drifting.merge(
                WindowHeaders.parse(
                    [
                        ("x-codex-primary-used-percent", "\(10 + i)"), ("x-codex-primary-window-minutes", "300"),
                        ("x-codex-primary-reset-after-seconds", "\(after)"),
                    ], nowMs: at), now: at)
        }
        #expect(drifting.readings[0].resetsAt == Self.now + 600_000 && drifting.readings[0].utilization == 0.13)
        let samples = (0..<4).map { i in
            WindowUsage.Sample(
                resourceId: "r", holder: "", seconds: 18_000, scope: "", utilization: Double(10 + i) / 100,
                resetsAt: Self.now + 600_000 + Int64(i % 2) * 2_000, rejected: false, at: Self.now + Int64(i) * 1_500)
        }
        #expect(WindowUsage.compute(samples, now: Self.now + Self.hour).first?.periods.count == 1)
    }

    @Test func readsCodexWindowsByTheirMinutesNotTheirNames() {
        // On this plan "primary" is the weekly window and "secondary" the 5-hour one.
        let headers = [
            ("x-codex-primary-used-percent", "30"), ("x-codex-primary-window-minutes", "10080"),
            ("x-codex-primary-reset-at", "\((Self.now + 100 * Self.hour) / 1000)"), ("x-codex-secondary-used-percent", "95.5"),
            ("x-codex-secondary-window-minutes", "300"), ("x-codex-secondary-reset-after-seconds", "600"),
        ]
        let report = WindowHeaders.parse(headers, nowMs: Self.now)
        #expect(report.readings.map(\.seconds) == [18_000, 604_800])
        #expect(abs(report.readings[0].utilization - 0.955) < 1e-12 && report.readings[0].resetsAt == Self.now + 600_000)
        #expect(report.readings[1].utilization == 0.3)
        #expect(report.limitedUntil == nil)
        let full = headers.map { $0.0 == "x-codex-secondary-used-percent" ? ($0.0, "100") : $0 }
        #expect(WindowHeaders.parse(full, nowMs: Self.now).limitedUntil == Self.now + 600_000)
        #expect(WindowHeaders.parse([("x-ratelimit-remaining-requests", "5")], nowMs: Self.now).isEmpty)
    }

    // MARK: the policy

    static func set(short: Double, shortReset: Int64 = 2 * hour, long: Double, longReset: Int64) -> WindowSet {
        WindowSet(readings: [
            WindowReading(seconds: 18_000, utilization: short, resetsAt: now + shortReset),
            WindowReading(seconds: 604_800, utilization: long, resetsAt: now + longReset),
        ])
    }

    @Test func urgencyIsTheRemainingShareOfTheLongestWindowPerHourLeftTimesTheWeight() throws {
        let policy = WindowPolicy()
        let a = try #require(policy.urgency(Self.set(short: 0.1, long: 0.4, longReset: 24 * Self.hour), weight: 1, now: Self.now))
        let b = try #require(policy.urgency(Self.set(short: 0.1, long: 0.1, longReset: 96 * Self.hour), weight: 1, now: Self.now))
        let c = try #require(policy.urgency(Self.set(short: 0.1, long: 0.8, longReset: 96 * Self.hour), weight: 20, now: Self.now))
        #expect(abs(a - 0.6 / 24) < 1e-12)
        #expect(abs(b - 0.9 / 96) < 1e-12)
        #expect(abs(c - 20 * 0.2 / 96) < 1e-12)
        #expect(policy.urgency(WindowSet(), weight: 1, now: Self.now) == nil)
        // Chosen in that order: c, then a (b's capacity can wait: it has four days left).
        let candidates = [a, b, c].map { Routing.Candidate(score: 0, urgency: $0) }
        #expect(Routing.choose(candidates, rotation: 0) == Routing.Choice(index: 2, reason: .windows))
        #expect(Routing.choose(Array(candidates.prefix(2)), rotation: 0) == Routing.Choice(index: 0, reason: .windows))
    }

    @Test func theThresholdSkipsAFullShortWindowUnlessItResetsSoon() {
        let policy = WindowPolicy(threshold: 0.9, graceMs: 300_000)
        #expect(policy.atThreshold(Self.set(short: 0.92, long: 0.2, longReset: 24 * Self.hour), now: Self.now))
        #expect(!policy.atThreshold(Self.set(short: 0.89, long: 0.2, longReset: 24 * Self.hour), now: Self.now))
        #expect(!policy.atThreshold(Self.set(short: 0.92, shortReset: 180_000, long: 0.2, longReset: 24 * Self.hour), now: Self.now))
    }

    // MARK: the engine

    func admit(
        _ engine: AdmissionEngine, _ w: AdmissionEngineTests.World, session: String? = nil, passthrough: Bool = false, at now: Int64 = now
    )
        -> Admission?
    {
        let catalog = w.catalog
        let r = AdmissionRequest(
            catalog: catalog, tenant: w.tenant, chain: catalog.projectChain("team"), key: w.key, model: "m", family: .chat, holder: w.key.id,
            shape: CostShape(inputTokens: 10, outputCap: 10), listPrice: AdmissionEngineTests.price, enforce: true, overage: nil, grants: [:],
            leaseIdleMs: 60_000, session: session, passthrough: passthrough, now: now)
        guard case .admitted(let a) = engine.admit(r) else { return nil }
        engine.release(resourceId: a.resource.id, estimatedTokens: 20, actualTokens: 20, now: now)
        return a
    }

    func observe(_ engine: AdmissionEngine, _ id: String, _ set: WindowSet, holder: String = "") {
        _ = engine.observeWindows(resourceId: id, holder: holder, report: WindowReport(readings: set.readings), now: Self.now)
    }

    @Test func aCredentialAt92PercentTakesNoNewWorkWhileAnotherCan() throws {
        var w = AdmissionEngineTests.World()
        w.resources = [w.resource("seat-a", kind: .seat, lease: .pooled), w.resource("seat-b", kind: .seat, lease: .pooled)]
        let engine = AdmissionEngine()
        // Without window data: least loaded, round robin among equals.
        #expect(admit(engine, w)?.routeReason == .leastLoaded)
        // seat-a would be the more urgent one, but its 5-hour window is at 92%.
        observe(engine, "seat-a", Self.set(short: 0.92, long: 0.1, longReset: 24 * Self.hour))
        observe(engine, "seat-b", Self.set(short: 0.5, long: 0.5, longReset: 96 * Self.hour))
        for _ in 0..<4 {
            let a = try #require(admit(engine, w))
            #expect(a.resource.id == "seat-b" && a.routeReason == .windows)
        }
        // Both at the threshold: still served (availability first), by the most urgent.
        observe(engine, "seat-b", Self.set(short: 0.95, long: 0.5, longReset: 96 * Self.hour))
        let both = try #require(admit(engine, w))
        #expect(both.resource.id == "seat-a" && both.routeReason == .overThreshold)
        // A window that refuses takes its credential out until the reset.
        observe(
            engine, "seat-a", WindowSet(readings: [WindowReading(seconds: 18_000, utilization: 1, resetsAt: Self.now + Self.hour, rejected: true)]))
        #expect(admit(engine, w)?.resource.id == "seat-b")
        #expect(admit(engine, w, at: Self.now + Self.hour + 1)?.resource.id == "seat-a")
    }

    @Test func aSessionKeepsItsResourceThenMovesWhenItCools() throws {
        var w = AdmissionEngineTests.World()
        w.resources = [w.resource("r1"), w.resource("r2")]
        let engine = AdmissionEngine()
        let first = try #require(admit(engine, w, session: "conv-1"))
        let bound = first.resource.id
        let other = bound == "r1" ? "r2" : "r1"
        for _ in 0..<5 {
            let next = try #require(admit(engine, w, session: "conv-1"))
            #expect(next.resource.id == bound && next.routeReason == .session)
        }
        // Another conversation is balanced as usual.
        #expect(try #require(admit(engine, w, session: "conv-2")).routeReason != .session)
        _ = engine.cool(resourceId: bound, until: Self.now + 60_000)
        let moved = try #require(admit(engine, w, session: "conv-1"))
        #expect(moved.resource.id == other && moved.routeReason == .sessionMoved && moved.movedFrom == bound)
        // ...and stays where it moved.
        #expect(try #require(admit(engine, w, session: "conv-1")).routeReason == .session)
    }

    @Test func passthroughSeatsTakeOnlyPassthroughRequestsAndCoolPerHolder() throws {
        var w = AdmissionEngineTests.World()
        w.resources = [w.resource("pooled"), w.resource("mine", kind: .seat, lease: .passthrough)]
        let engine = AdmissionEngine()
        for _ in 0..<3 { #expect(admit(engine, w)?.resource.id == "pooled") }
        let own = try #require(admit(engine, w, passthrough: true))
        #expect(own.resource.id == "mine" && own.routeReason == .passthrough)
        // The holder's own plan hit its limit: only their passthrough requests wait.
        _ = engine.coolHolder(resourceId: "mine", holder: "k", until: Self.now + Self.hour, now: Self.now)
        #expect(admit(engine, w, passthrough: true) == nil)
        #expect(admit(engine, w)?.resource.id == "pooled")
        var other = w
        other.key = DataPlaneKey(
            kind: .projectKey, id: "k2", tenantId: "t", projectId: "team", name: "k2", allowedModels: [], budgetCapMicros: nil, rpm: nil,
            expiresAt: nil, validUntil: nil)
        #expect(admit(engine, other, passthrough: true)?.resource.id == "mine")
        // A holder's own windows are theirs: another holder's refusing window does not touch them.
        observe(
            engine, "mine", WindowSet(readings: [WindowReading(seconds: 18_000, utilization: 1, resetsAt: Self.now + Self.hour, rejected: true)]),
            holder: "k2")
        #expect(admit(engine, other, passthrough: true) == nil)
        _ = engine.coolHolder(resourceId: "mine", holder: "k", until: Self.now, now: Self.now)
        #expect(admit(engine, w, passthrough: true, at: Self.now + Self.hour + 1)?.resource.id == "mine")
    }
}
