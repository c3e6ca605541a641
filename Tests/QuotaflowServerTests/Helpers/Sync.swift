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
