import Foundation
import Logging
import QuotaflowCore
import Synchronization

extension LedgerWriter {
    /// Commits queued rows in one transaction (with the fleet's settlement, if any), retrying with backoff;
    /// resumes their waiters with the outcome.
    @discardableResult
    func commit(_ rows: inout [(Item, CheckedContinuation<Bool, Never>?)]) -> Bool {
        guard !rows.isEmpty else { return true }
        let start = DispatchTime.now().uptimeNanoseconds
        var ok = false
        var spend: [CounterSpend] = []
        var delayMs: UInt32 = 5
        let inTransaction = self.inTransaction
        let items = rows.map(\.0)
        for attempt in 0..<12 {
            do {
                spend = try db.writeSync { conn in
                    try conn.transaction(isolation: inTransaction == nil ? .serializable : .readCommitted) {
                        try conn.insertLedger(items.map(\.entry))
                        return try inTransaction?(conn, items) ?? []
                    }
                }
                ok = true
                break
            } catch {
                logger.error("ledger commit failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                usleep(delayMs * 1000)
                delayMs = min(delayMs * 2, 1000)
            }
        }
        committed(items, micros: Int64((DispatchTime.now().uptimeNanoseconds - start) / 1000), ok: ok, fleetSpend: spend)
        for (_, c) in rows { c?.resume(returning: ok) }
        rows.removeAll(keepingCapacity: true)
        return ok
    }

    /// Counts a batch, and hands committed rows to `afterCommit`.
    func committed(_ items: [Item], micros: Int64, ok: Bool, fleetSpend: [CounterSpend] = []) {
        stats.withLock {
            $0.batches += 1
            $0.rows += items.count
            $0.lastBatchSize = items.count
            $0.totalCommitMicros += micros
            if !ok { $0.failures += items.count }
        }
        if ok { afterCommit(items, micros, fleetSpend) }
    }
}

/// `NSCondition` made Sendable (it is a lock; its own methods are thread-safe).
final class NSConditionBox: @unchecked Sendable {
    let condition = NSCondition()
    func lock() { condition.lock() }
    func unlock() { condition.unlock() }
    func wait() { condition.wait() }
    func signal() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }
}
