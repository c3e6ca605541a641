import Synchronization

/// A gate that holds every waiter until it opens.
actor AsyncGate {
    var isOpen = false
    var waiters: [CheckedContinuation<Void, Never>] = []

    init() {
        // A test that fails before it opens the gate must not leave a stub's answers waiting forever
        // (its server would never stop): the test's scope opens it before stopping anything.
        TestScope.current?.beforeStopping { [self] in await self.open() }
    }

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Waits until the gate opens or `limit` passes; `true` when it was opened, not timed out.
    func wait(upTo limit: Duration) async -> Bool {
        let timer = Task {
            try? await Task.sleep(for: limit)
            self.expire()
        }
        await wait()
        timer.cancel()
        return !timedOut
    }

    private var timedOut = false

    private func expire() {
        guard !isOpen else { return }
        timedOut = true
        open()
    }

    func open() {
        isOpen = true
        for w in waiters { w.resume() }
        waiters = []
    }
}

/// A count shared across tasks.
final class Counter: Sendable {
    let count = Atomic<Int>(0)
    func add() { count.wrappingAdd(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// Whether `task` ends within `limit`. A task that doesn't is left running: awaiting it could hang
/// the whole run (awaiting a task's value ignores cancellation).
func finishes<T: Sendable>(_ task: Task<T, any Error>, within limit: Duration) async -> Bool {
    await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
        let pending = Mutex<CheckedContinuation<Bool, Never>?>(continuation)
        let finish: @Sendable (Bool) -> Void = { ended in pending.withLock { $0.take() }?.resume(returning: ended) }
        let timer = Task {
            // Cancelled (the task ended first): nothing to report.
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            finish(false)
        }
        Task {
            _ = try? await task.value
            finish(true)
            timer.cancel()
        }
    }
}
