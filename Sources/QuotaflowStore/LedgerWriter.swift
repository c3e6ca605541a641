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
        case barrier(@Sendable (SQLiteConnection) -> Void)
    }

    struct Queue {
        var jobs: [Job] = []
        var stopping = false
        var stopped = false
        /// The writer thread is asleep and must be signalled (otherwise it will see new jobs by itself).
        var writerWaiting = false
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
    let afterCommit: @Sendable (_ items: [Item], _ commitMicros: Int64) -> Void
    let queue = Mutex(Queue())
    let condition = NSConditionBox()
    let stats = Mutex(Stats())
    /// Waiters for the writer thread to finish, and whether it has.
    let finished = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init(db: Database, logger: Logger, maxBatch: Int = 512, afterCommit: @escaping @Sendable (_ items: [Item], _ commitMicros: Int64) -> Void)
    {
        self.db = db
        self.logger = logger
        self.maxBatch = maxBatch
        self.afterCommit = afterCommit
        let thread = Thread { [self] in self.run() }
        thread.name = "quotaflow-ledger"
        thread.start()
    }

    public var statistics: Stats { stats.withLock { $0 } }

    /// Queues a row and waits until it is committed. Returns `false` if it could not be written.
    @discardableResult
    public func append(_ item: Item) async -> Bool {
        await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            enqueue(.row(item, c))
        }
    }

    /// Queues a row without waiting (refusals, where nothing was delivered).
    public func appendDetached(_ item: Item) { enqueue(.row(item, nil)) }

    /// Runs `body` on the writer connection between batches and returns its result.
    public func barrier<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let result: Result<T, any Error> = await withCheckedContinuation { (c: CheckedContinuation<Result<T, any Error>, Never>) in
            enqueue(.barrier({ conn in c.resume(returning: Result { try body(conn) }) }))
        }
        return try result.get()
    }

    /// Queues `body` to run on the writer connection between batches, without waiting for it.
    public func submitBarrier(_ body: @escaping @Sendable (SQLiteConnection) throws -> Void) {
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
        while true {
            condition.lock()
            var jobs: [Job] = []
            var exit = false
            while true {
                let (taken, stop) = queue.withLock { q -> ([Job], Bool) in
                    let n = min(q.jobs.count, maxBatch)
                    let taken = Array(q.jobs.prefix(n))
                    q.jobs.removeFirst(n)
                    if taken.isEmpty && q.stopping { q.stopped = true }
                    if taken.isEmpty && !q.stopping { q.writerWaiting = true }
                    return (taken, q.stopping)
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

    func commit(_ rows: inout [(Item, CheckedContinuation<Bool, Never>?)]) {
        guard !rows.isEmpty else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        var ok = false
        var delayMs: UInt32 = 5
        for attempt in 0..<12 {
            do {
                try db.writeSync { conn in try conn.transaction { for (item, _) in rows { try conn.insertLedger(item.entry) } } }
                ok = true
                break
            } catch {
                logger.error("ledger commit failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                usleep(delayMs * 1000)
                delayMs = min(delayMs * 2, 1000)
            }
        }
        let micros = Int64((DispatchTime.now().uptimeNanoseconds - start) / 1000)
        stats.withLock {
            $0.batches += 1
            $0.rows += rows.count
            $0.lastBatchSize = rows.count
            $0.totalCommitMicros += micros
            if !ok { $0.failures += rows.count }
        }
        if ok { afterCommit(rows.map(\.0), micros) }
        for (_, c) in rows { c?.resume(returning: ok) }
        rows.removeAll(keepingCapacity: true)
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
