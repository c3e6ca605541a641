import Foundation
import Logging
import QuotaflowCore
import Synchronization

/// Writes ledger rows in batched transactions (group commit) on a dedicated thread.
///
/// A request hands over its row and waits; the thread commits everything queued so far in one
/// transaction, runs `afterCommit` (which moves budget reservations to spend), then resumes every
/// waiter. So a response is completed only after its row is durable, and budget counters change
/// only together with committed rows. `barrier` jobs run between batches, which lets
/// reconciliation read the ledger and the counters at one consistent point.
public final class LedgerWriter: Sendable {
    public struct Item: Sendable {
        public let entry: LedgerEntry
        public let settlement: Settlement?

        public init(entry: LedgerEntry, settlement: Settlement?) {
            self.entry = entry
            self.settlement = settlement
        }
    }

    enum Job {
        case row(Item, CheckedContinuation<Bool, Never>?)
        case barrier(@Sendable (StoreConnection) -> Void)
    }

    struct Queue {
        var jobs: [Job] = []
        var stopping = false
        var stopped = false
        /// The writer thread is asleep and must be signalled (otherwise it will see new jobs by itself).
        var writerWaiting = false
        /// A caller is committing its own row on its own thread (see `append`).
        var committing = false
        /// The writer thread has taken jobs and not finished them (a batch or a barrier).
        var writerBusy = false
        /// When the last commit ended (monotonic nanoseconds).
        var lastCommitEnd: UInt64 = 0
    }

    /// Batch statistics for metrics.
    public struct Stats: Sendable {
        public var batches: Int = 0
        public var rows: Int = 0
        public var failures: Int = 0
        public var lastBatchSize: Int = 0
        public var totalCommitMicros: Int64 = 0
    }

    let db: Database
    let logger: Logger
    let maxBatch: Int
    /// How long the writer must have been idle for a caller to commit its own row (1 ms: at
    /// everyday load requests are tens of milliseconds apart; under load they are microseconds).
    let inlineAfterIdleNs: UInt64 = 1_000_000
    let afterCommit: @Sendable (_ items: [Item], _ commitMicros: Int64, _ fleetSpend: [CounterSpend]) -> Void
    /// Runs inside each batch's transaction (a fleet's shared counters are settled with the rows);
    /// what it returns is handed to `afterCommit`.
    let inTransaction: (@Sendable (_ conn: StoreConnection, _ items: [Item]) throws -> [CounterSpend])?
    let queue = Mutex(Queue())
    let condition = NSConditionBox()
    let stats = Mutex(Stats())
    /// Waiters for the writer thread to finish, and whether it has.
    let finished = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public convenience init(
        db: Database, logger: Logger, maxBatch: Int = 512, afterCommit: @escaping @Sendable (_ items: [Item], _ commitMicros: Int64) -> Void
    ) {
        self.init(db: db, logger: logger, maxBatch: maxBatch, inTransaction: nil) { items, micros, _ in afterCommit(items, micros) }
    }

    /// `inTransaction` (a fleet's settlement) makes each batch a READ COMMITTED transaction on
    /// PostgreSQL: its statements check what they change themselves, and serializable batches
    /// would collide on the shared counters every replica settles.
    public init(
        db: Database, logger: Logger, maxBatch: Int = 512,
        inTransaction: (@Sendable (_ conn: StoreConnection, _ items: [Item]) throws -> [CounterSpend])?,
        afterCommit: @escaping @Sendable (_ items: [Item], _ commitMicros: Int64, _ fleetSpend: [CounterSpend]) -> Void
    ) {
        self.db = db
        self.logger = logger
        self.maxBatch = maxBatch
        self.afterCommit = afterCommit
        self.inTransaction = inTransaction
        let thread = Thread { [self] in self.run() }
        thread.name = "quotaflow-ledger"
        thread.start()
    }

    public var statistics: Stats { stats.withLock { $0 } }

    /// Commits a row and returns once it is committed. Returns `false` if it could not be written.
    ///
    /// When the writer has been idle for a while (`inlineAfterIdleNs`: nothing queued, nothing
    /// being written, no commit ended lately), the caller commits its row itself, on its own
    /// thread (a WAL commit without fsync, tens of microseconds): at everyday load a row then costs
    /// no hand-off to the writer thread and back. Otherwise the row joins the queue and the writer
    /// thread commits it with the others in one transaction (group commit), so under load the
    /// writer is woken once per batch, not per row, and batches stay large.
    @discardableResult
    public func append(_ item: Item) async -> Bool {
        let idleNs = inlineAfterIdleNs
        let lead = queue.withLock { q -> Bool in
            let now = DispatchTime.now().uptimeNanoseconds
            guard db.commitsInline, q.jobs.isEmpty, !q.committing, !q.writerBusy, !q.stopping, now >= q.lastCommitEnd + idleNs else { return false }
            q.committing = true
            return true
        }
        if lead, commitInline(item) { return true }
        return await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            // A leader whose connection was busy hands its row over in the same step that ends its
            // turn, so the writer cannot stop in between.
            if lead { endInlineTurn(handingOver: .row(item, c)) } else { enqueue(.row(item, c)) }
        }
    }

    /// Commits `item` on the calling thread if the writer connection is free at once; `false` (the
    /// turn still held) when it is not or the commit failed: the writer thread then takes the row.
    /// Never waits for the connection, so an event loop is never held behind an admin write.
    func commitInline(_ item: Item) -> Bool {
        let start = DispatchTime.now().uptimeNanoseconds
        let inTransaction = self.inTransaction
        let spend = try? db.writeIfFree { conn in
            try conn.transaction(isolation: inTransaction == nil ? .serializable : .readCommitted) {
                try conn.insertLedger(item.entry)
                return try inTransaction?(conn, [item]) ?? []
            }
        }
        guard let spend else { return false }
        committed([item], micros: Int64((DispatchTime.now().uptimeNanoseconds - start) / 1000), ok: true, fleetSpend: spend)
        endInlineTurn(handingOver: nil)
        return true
    }

    /// Ends a caller's inline turn, queueing `job` (the row it could not commit) in the same step.
    func endInlineTurn(handingOver job: Job?) {
        let end = DispatchTime.now().uptimeNanoseconds
        let wake = queue.withLock { q -> Bool in
            q.committing = false
            q.lastCommitEnd = end
            if let job { q.jobs.append(job) }
            let wake = (!q.jobs.isEmpty || q.stopping) && q.writerWaiting
            if wake { q.writerWaiting = false }
            return wake
        }
        if wake { condition.signal() }
    }

    /// Queues a row without waiting (refusals, where nothing was delivered).
    public func appendDetached(_ item: Item) { enqueue(.row(item, nil)) }

    /// Runs `body` on the writer connection between batches and returns its result.
    public func barrier<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        let result: Result<T, any Error> = await withCheckedContinuation { (c: CheckedContinuation<Result<T, any Error>, Never>) in
            enqueue(.barrier({ conn in c.resume(returning: Result { try body(conn) }) }))
        }
        return try result.get()
    }

    /// Queues `body` to run on the writer connection between batches, without waiting for it.
    public func submitBarrier(_ body: @escaping @Sendable (StoreConnection) throws -> Void) {
        let logger = self.logger
        enqueue(
            .barrier({ conn in
                do { try body(conn) } catch { logger.error("ledger barrier failed", metadata: ["error": "\(error)"]) }
            }))
    }

    /// Waits until everything queued before this call is committed.
    public func flush() async { _ = try? await barrier { _ in () } }

    func enqueue(_ job: Job) {
        let (accepted, wake) = queue.withLock { q -> (Bool, Bool) in
            guard !q.stopped else { return (false, false) }
            q.jobs.append(job)
            let wake = q.writerWaiting
            q.writerWaiting = false
            return (true, wake)
        }
        if accepted {
            if wake { condition.signal() }
        } else if case .row(_, let c) = job {
            logger.error("ledger row arrived after shutdown")
            c?.resume(returning: false)
        } else if case .barrier(let body) = job {
            try? db.writeSync { body($0) }
        }
    }

    /// Drains the queue, commits it, stops the thread, and returns when it has (without blocking
    /// a thread of the concurrency pool while it waits).
    public func shutdown() async {
        queue.withLock { q in
            q.stopping = true
            q.writerWaiting = false
        }
        condition.signal()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = finished.withLock { f -> Bool in
                if !f.done { f.waiters.append(c) }
                return f.done
            }
            if done { c.resume() }
        }
    }

    func run() {
        // Named, so per-thread counts (bench/threads.py) tell the writer apart (Linux only).
        if let f = fopen("/proc/thread-self/comm", "w") {
            fputs("qf-ledger", f)
            fclose(f)
        }
        while true {
            condition.lock()
            var jobs: [Job] = []
            var exit = false
            while true {
                let (taken, stop) = queue.withLock { q -> ([Job], Bool) in
                    // A caller is committing its own row: wait for it (it signals when done).
                    let n = q.committing ? 0 : min(q.jobs.count, maxBatch)
                    let taken = Array(q.jobs.prefix(n))
                    q.jobs.removeFirst(n)
                    if taken.isEmpty {
                        if q.stopping && !q.committing { q.stopped = true } else { q.writerWaiting = true }
                    } else {
                        q.writerBusy = true
                    }
                    return (taken, q.stopping && !q.committing)
                }
                if !taken.isEmpty {
                    jobs = taken
                    break
                }
                if stop {
                    exit = true
                    break
                }
                condition.wait()
            }
            condition.unlock()
            if exit { break }
            process(jobs)
            let end = DispatchTime.now().uptimeNanoseconds
            queue.withLock { q in
                q.lastCommitEnd = end
                q.writerBusy = false
            }
        }
        let waiters = finished.withLock { f -> [CheckedContinuation<Void, Never>] in
            f.done = true
            defer { f.waiters = [] }
            return f.waiters
        }
        for w in waiters { w.resume() }
    }

    func process(_ jobs: [Job]) {
        var rows: [(Item, CheckedContinuation<Bool, Never>?)] = []
        for job in jobs {
            switch job {
            case .row(let item, let c): rows.append((item, c))
            case .barrier(let body):
                commit(&rows)
                do { try db.writeSync { body($0) } } catch { logger.error("ledger barrier failed", metadata: ["error": "\(error)"]) }
            }
        }
        commit(&rows)
    }
}
