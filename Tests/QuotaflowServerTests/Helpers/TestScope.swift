import QuotaflowCore
import Synchronization
import Testing

/// Everything a test started (servers, stub upstreams) and what must run when it ends, stopped in
/// reverse order and awaited before the test counts as finished, whether it passed, failed or threw.
///
/// Servers and stubs register themselves with the scope of the task that starts them, so helpers
/// that start one need no parameter; starting one outside a scope is a test bug and is recorded.
final class TestScope: Sendable {
    @TaskLocal static var current: TestScope?

    private let endings = Mutex<[@Sendable () async -> Void]>([])

    /// Runs `action` when the scope ends (before anything started earlier is stopped).
    func atEnd(_ action: @escaping @Sendable () async -> Void) { endings.withLock { $0.append(action) } }

    private let releases = Mutex<[@Sendable () async -> Void]>([])

    /// Runs `action` when the scope ends, before anything is stopped: for what a stopping server
    /// would otherwise wait on forever (a gate a failed test never opened).
    func beforeStopping(_ action: @escaping @Sendable () async -> Void) { releases.withLock { $0.append(action) } }

    private let onceTasks = Mutex<[String: Task<Void, Never>]>([:])

    /// Runs `work` the first time the scope asks for `key`; later calls await that same run.
    func once(_ key: String, _ work: @escaping @Sendable () async -> Void) async {
        let task = onceTasks.withLock { tasks in
            if let running = tasks[key] { return running }
            let started = Task { await work() }
            tasks[key] = started
            return started
        }
        await task.value
    }

    fileprivate func close() async {
        for release in releases.withLock({ $0 }) { await release() }
        let all = endings.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for action in all.reversed() { await action() }
    }

    /// Registers `stop` with the current scope, or records an issue when there is none.
    static func adopt(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, stop: @escaping @Sendable () async -> Void) {
        guard let scope = current else {
            Issue.record("\(what) started outside a test scope: nothing would stop it", sourceLocation: sourceLocation)
            return
        }
        scope.atEnd(stop)
    }
}

/// Runs `body` in a new scope, then stops (and awaits) everything it started.
func withTestScope<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
    let scope = TestScope()
    let result: Result<R, any Error>
    do {
        result = .success(try await TestScope.$current.withValue(scope) { try await body() })
    } catch {
        result = .failure(error)
    }
    await scope.close()
    return try result.get()
}

/// `@Suite(.scoped)`: every test of the suite runs in its own `TestScope`, so what it starts is
/// stopped and awaited when it ends.
///
/// A trait rather than wrapping each body in `withTestScope { … }`: Swift 6.3.1 miscompiles a closure
/// that follows, in the same enclosing closure, an `#expect` whose argument holds a closure (the
/// second closure runs the first one's body), so test bodies stay at function level.
struct ScopedTrait: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> ScopedTrait? { testCase == nil ? nil : self }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await withTestScope { try await function() }
    }
}

extension Trait where Self == ScopedTrait {
    static var scoped: ScopedTrait { ScopedTrait() }
}
