import QuotaflowCore

extension StoreConnection {
    /// Budget counters recomputed from the ledger rows of the current and previous periods (of one
    /// tenant, or all), with the thresholds already fired. `known` counters the ledger has nothing
    /// for come back as zero.
    public func recomputeCounters(
        catalog: Catalog, now: Int64, known: [BudgetKey: BudgetCounter], tenantId: String? = nil
    ) throws
        -> Reconciler.Result
    {
        var reconciler = Reconciler(catalog: catalog, now: now)
        let since = Reconciler.since(now: now)
        try forEachCharge(since: since, tenantId: tenantId) { reconciler.add($0) }
        let scoped = tenantId.map { t in known.filter { Reconciler.belongs($0.key, to: t, catalog: catalog) } } ?? known
        let fired = try firedAlerts(since: since).map { (key: $0.key, periodStart: $0.periodStart, threshold: $0.threshold) }
        return reconciler.result(known: scoped, fired: fired)
    }
}
