import Synchronization

/// Wall-clock time in milliseconds since the Unix epoch, injectable so tests never sleep.
public protocol WallClock: Sendable {
    func nowMs() -> Int64
    /// Suspends until the clock reads at least `deadline`. Throws `CancellationError` when cancelled.
    func sleep(untilMs deadline: Int64) async throws
}

extension WallClock {
    public func sleep(forMs duration: Int64) async throws {
        try await sleep(untilMs: nowMs() + duration)
    }
}

/// The real clock.
public struct SystemClock: WallClock {
    public init() {}

    public func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    public func sleep(untilMs deadline: Int64) async throws {
        let delta = deadline - nowMs()
        if delta > 0 { try await Task.sleep(for: .milliseconds(delta)) }
        try Task.checkCancellation()
    }
}

/// A clock that only moves when told to. Sleepers wake when `advance` passes their deadline.
public final class ManualClock: WallClock {
    struct Sleeper {
        let id: Int
        let deadline: Int64
        let continuation: CheckedContinuation<Void, any Error>
    }

    struct State {
        var now: Int64
        var nextId = 0
        var sleepers: [Sleeper] = []
    }

    let state: Mutex<State>

    public init(nowMs: Int64) {
        state = Mutex(State(now: nowMs))
    }

    public func nowMs() -> Int64 { state.withLock { $0.now } }

    /// Number of tasks currently sleeping on this clock (lets tests wait until a worker is parked).
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    public func advance(byMs delta: Int64) { set(nowMs: nowMs() + delta) }

    public func set(nowMs: Int64) {
        let due: [Sleeper] = state.withLock { s in
            s.now = max(s.now, nowMs)
            let now = s.now
            let ready = s.sleepers.filter { $0.deadline <= now }
            s.sleepers.removeAll { $0.deadline <= now }
            return ready
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    public func sleep(untilMs deadline: Int64) async throws {
        let id: Int = state.withLock { s in
            s.nextId += 1
            return s.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: (any Error)?? = state.withLock { s in
                    if Task.isCancelled { return .some(CancellationError()) }
                    if deadline <= s.now { return .some(nil) }
                    s.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return .none
                }
                switch resumeNow {
                case .some(.some(let error)): continuation.resume(throwing: error)
                case .some(.none): continuation.resume()
                case .none: break
                }
            }
        } onCancel: {
            let sleeper: Sleeper? = state.withLock { s in
                guard let index = s.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return s.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
