import QuotaflowCore
import Synchronization

/// Lets a worker sleep on the (injectable) clock until a deadline or until someone pokes it.
///
/// One worker waits on a `Wakeup`: a poke that finds no one waiting is kept for the next wait, so a
/// worker busy when it came still sees it (a shutdown is never missed); with two waiters, either
/// could take it and leave the other asleep. Give each loop its own.
final class Wakeup: Sendable {
    let waiters = Mutex<(poked: Bool, continuations: [CheckedContinuation<Void, Never>])>((false, []))

    func poke() {
        let cs = waiters.withLock { w -> [CheckedContinuation<Void, Never>] in
            let cs = w.continuations
            w.continuations = []
            if cs.isEmpty { w.poked = true }
            return cs
        }
        for c in cs { c.resume() }
    }

    func waitForPoke() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = waiters.withLock { w -> Bool in
                if w.poked {
                    w.poked = false
                    return true
                }
                w.continuations.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Returns at `deadline` on `clock`, on a poke, or when cancelled.
    func wait(untilMs deadline: Int64, clock: any WallClock) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(untilMs: deadline) }
            group.addTask { await self.waitForPoke() }
            await group.next()
            group.cancelAll()
            self.poke()
            _ = await group.next()
            // Clear the poke used to release the other task.
            self.waiters.withLock { w in w.poked = false }
        }
    }
}
