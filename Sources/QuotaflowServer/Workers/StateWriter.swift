import Logging
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle
import Synchronization

/// The one way the system (not an admin) changes state: cooldowns and their audit entries, model
/// cooldowns, approval requests, probe results, seat expiry. Jobs run one at a time, in order, each
/// in its own write transaction (republishing the catalog when asked). A graceful shutdown stops
/// taking new work only after the queue is drained, so nothing submitted is lost; the service
/// stops after the HTTP server and the workers that submit to it.
final class StateWriter: Service, Sendable {
    struct Job: Sendable {
        let what: String
        let republish: Bool
        let body: @Sendable (StoreConnection) throws -> Void
        /// Called once the change is written and, when asked, the catalog republished (or it failed).
        var done: (@Sendable ((any Error)?) -> Void)? = nil
    }

    let state: AppState
    let jobs: AsyncStream<Job>
    let queue: AsyncStream<Job>.Continuation

    init(state: AppState) {
        self.state = state
        (jobs, queue) = AsyncStream.makeStream(of: Job.self)
    }

    /// Queues a change and returns at once; it is written before the server stops.
    func submit(
        _ what: String, republish: Bool = false, done: (@Sendable ((any Error)?) -> Void)? = nil,
        _ body: @escaping @Sendable (StoreConnection) throws -> Void
    ) {
        let job = Job(what: what, republish: republish, body: body, done: done)
        // After shutdown there is no queue: write on the caller's thread rather than lose it.
        if case .terminated = queue.yield(job) { runBlocking(job) }
    }

    /// Runs a change through the queue and returns its result once it is written and, when asked,
    /// the catalog republished: a caller that reads the catalog next sees the change.
    func perform<T: Sendable>(_ what: String, republish: Bool = false, _ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        let result = Mutex<T?>(nil)
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            submit(
                what, republish: republish,
                done: { error in
                    if let error { return c.resume(throwing: error) }
                    guard let value = result.withLock({ $0 }) else { return c.resume(throwing: CancellationError()) }
                    c.resume(returning: value)
                }
            ) { conn in
                let value = try body(conn)
                result.withLock { $0 = value }
            }
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            for await job in jobs { await run(job) }
        } onGracefulShutdown: {
            // Ends the loop once every job already queued has run.
            self.queue.finish()
        }
    }

    /// Runs one job on the database's thread pool.
    func run(_ job: Job) async {
        do {
            if job.republish {
                try await state.mutate { conn in try job.body(conn) }
            } else {
                try await state.db.write { conn in try job.body(conn) }
            }
        } catch {
            state.logger.error("could not record a state change", metadata: ["what": "\(job.what)", "error": "\(error)"])
            return job.done?(error) ?? ()
        }
        job.done?(nil)
    }

    func runBlocking(_ job: Job) {
        do {
            if job.republish {
                try state.mutateSync { conn in try job.body(conn) }
            } else {
                try state.db.writeSync { conn in try conn.transaction { try job.body(conn) } }
            }
        } catch {
            state.logger.error("could not record a state change", metadata: ["what": "\(job.what)", "error": "\(error)"])
            return job.done?(error) ?? ()
        }
        job.done?(nil)
    }
}
