import HashTreeCollections
import QuotaflowCore
import QuotaflowStore

/// Keeps the engine's budget counters equal to a sum over the ledger: computed at start, and again
/// when a change redefines what they count (a budget period, a rollover cap, the project tree).
struct Counters: Sendable {
    let engine: AdmissionEngine
    let ledger: LedgerWriter
    let state: AppState

    /// At start, before serving.
    func recomputeNow() throws {
        let catalog = state.catalog
        let now = state.clock.nowMs()
        let known = engine.allCounters()
        engine.load(try state.db.writeSync { conn in try conn.recomputeCounters(catalog: catalog, now: now, known: known) })
    }

    /// Between ledger batches, so no settlement is half-applied; queued on the ledger writer, which
    /// drains it before it stops.
    func recompute() {
        let catalog = state.catalog
        let now = state.clock.nowMs()
        let engine = self.engine
        ledger.submitBarrier { conn in engine.load(try conn.recomputeCounters(catalog: catalog, now: now, known: engine.allCounters())) }
    }

    /// Budget periods, caps with rollover, or the project tree changed: counters are recomputed. Only
    /// the changed objects are compared; a new project has no spend to count yet.
    func catalogChanged(old: Catalog, new: Catalog, changes: CatalogChanges) {
        var changed = false
        for id in changes.projects {
            guard let o = old.projects[id] else { continue }
            let p = new.projects[id]
            if o.parentId != p?.parentId || o.budget.period != p?.budget.period || o.budget.rolloverPercent != p?.budget.rolloverPercent
                || (o.budget.rolloverPercent > 0 && o.budget.monthlyCapMicros != p?.budget.monthlyCapMicros)
            {
                changed = true
                break
            }
        }
        for id in changes.tenants where old.tenants[id].map({ $0.settings.period != new.tenants[id]?.settings.period }) ?? false { changed = true }
        if changed { recompute() }
    }
}
