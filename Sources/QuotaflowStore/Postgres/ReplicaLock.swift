import Logging
import PostgresNIO
import Synchronization

/// The one-replica guard on PostgreSQL: a session advisory lock on a dedicated connection (outside
/// the pool), held for as long as the process serves.
///
/// Budgets, rate limits, leases and cooldowns are still kept in one process's memory, so a second
/// replica on the same database would double every budget. Until admission is shared through the
/// database, a replica that cannot take the lock does not start, and one that loses it (its
/// connection dropped, so PostgreSQL released it) stops serving until it holds it again.
public final class ReplicaLock: Sendable {
    /// The lock's key ("qf-rep").
    static let key: Int64 = 0x7166_2d72_6570
    let session: Mutex<PostgresSession>
    let held = Atomic<Bool>(false)

    init(_ session: PostgresSession) {
        self.session = Mutex(session)
    }

    /// Whether this process holds the lock (as of the last `acquire` or `check`).
    public var isHeld: Bool { held.load(ordering: .acquiring) }

    /// Takes the lock if no other session holds it; `false` when another replica does.
    @discardableResult
    public func acquire() throws -> Bool {
        try session.withLock { s in
            let ok = try s.query("SELECT pg_try_advisory_lock(\(Self.key)) AS ok", []).rows.first?.int("ok") == 1
            held.store(ok, ordering: .releasing)
            return ok
        }
    }

    /// Confirms the lock is still held over a live connection. A lost connection lost the lock: it
    /// is taken again on a new one if no one else has it. Never throws; `false` means "do not serve".
    @discardableResult
    public func check() -> Bool {
        let ok = session.withLock { s -> Bool in
            let alive = s.connection.map { !$0.isClosed } ?? false
            if alive && held.load(ordering: .acquiring) {
                return (try? s.query("SELECT 1 AS one", []).rows.first?.int("one")) == 1
            }
            return (try? s.query("SELECT pg_try_advisory_lock(\(Self.key)) AS ok", []).rows.first?.int("ok")) == 1
        }
        held.store(ok, ordering: .releasing)
        return ok
    }

    /// Lets the lock go (graceful shutdown), so a successor can start at once.
    public func release() {
        session.withLock { s in s.disconnect() }
        held.store(false, ordering: .releasing)
    }
}

extension Database {
    /// A new one-replica lock on its own connection (PostgreSQL only; `nil` on SQLite, where the file
    /// belongs to one process anyway).
    public func replicaLock(logger: Logger) throws -> ReplicaLock? {
        guard let postgres else { return nil }
        return ReplicaLock(try PostgresSession(location: postgres, eventLoop: Self.postgresLoops.next(), logger: logger))
    }
}
