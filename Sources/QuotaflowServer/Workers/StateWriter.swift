import Logging
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle

/// The one way the system (not an admin) changes state: cooldowns and their audit entries, model
/// cooldowns, approval requests, probe results, seat expiry. Jobs run one at a time, in order, each
/// in its own write transaction (republishing the catalog when asked). A graceful shutdown stops
/// taking new work only after the queue is drained, so nothing submitted is lost; the service
/// stops after the HTTP server and the workers that submit to it.
final class StateWriter: Service, Sendable {
    struct Job: Sendable {
        let what: String
        let republish: Bool
        let body: @Sendable (SQLiteConnection) throws -> Void
    }

    let state: AppState
    let jobs: AsyncStream<Job>
    let queue: AsyncStream<Job>.Continuation

    init(state: AppState) {
        self.state = state
        (jobs, queue) = AsyncStream.makeStream(of: Job.self)
    }

    /// Queues a change and returns at once; it is written before the server stops.
    func submit(_ what: String, republish: Bool = false, _ body: @escaping @Sendable (SQLiteConnection) throws -> Void) {
        let job = Job(what: what, republish: republish, body: body)
        // After shutdown there is no queue: write on the caller's thread rather than lose it.
        if case .terminated = queue.yield(job) { runBlocking(job) }
    }

    /// Runs a change through the queue and returns its result.
    func perform<T: Sendable>(_ what: String, republish: Bool = false, _ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            submit(what, republish: republish) { conn in
                do { c.resume(returning: try body(conn)) } catch {
                    c.resume(throwing: error)
                    throw error
                }
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
            try await state.db.write { conn in try job.body(conn) }
            if job.republish { try await state.reloadCatalog() }
        } catch {
            state.logger.error("could not record a state change", metadata: ["what": "\(job.what)", "error": "\(error)"])
        }
    }

    func runBlocking(_ job: Job) {
        do {
            try state.db.writeSync { conn in try conn.transaction { try job.body(conn) } }
            if job.republish { try state.reloadCatalogSync() }
        } catch {
            state.logger.error("could not record a state change", metadata: ["what": "\(job.what)", "error": "\(error)"])
        }
    }
}
