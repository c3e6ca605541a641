import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A replica's own line to the fleet on PostgreSQL: one dedicated connection, outside the pools,
/// that heartbeats this replica, listens for catalog changes (`qf_catalog`), and holds the
/// leader's session advisory lock when this replica leads.
///
/// Whatever it depends on is lost with the connection: PostgreSQL releases the lock, and
/// notifications sent meanwhile are gone. So the moment the connection closes, this replica stops
/// leading (fencing) and stops serving, until `tick` has a new connection and the caller has
/// resynchronised the catalog (`fresh`).
public final class FleetLink: Sendable {
    /// The leader's lock key ("qf-rep").
    static let leaderKey: Int64 = 0x7166_2d72_6570

    public struct Status: Sendable, Equatable {
        public var connected: Bool
        public var leader: Bool
        /// A new connection since the last tick: notifications may have been missed.
        public var fresh: Bool

        public init(connected: Bool, leader: Bool, fresh: Bool) {
            self.connected = connected
            self.leader = leader
            self.fresh = fresh
        }
    }

    public let replicaId: String
    let session: Mutex<PostgresSession>
    let connected = Atomic<Bool>(false)
    /// The caller caught up on catalog changes over the current connection (see `caughtUp`).
    let current = Atomic<Bool>(false)
    let leading = Atomic<Bool>(false)
    /// Bumped by each new connection, so that a close seen late does not clear a newer one's state.
    let generation = Atomic<Int>(0)
    let notify = Mutex<@Sendable () -> Void>({})
    /// The connection the listener and the fencing are set up on.
    let listenedOn = Mutex<ObjectIdentifier?>(nil)
    /// After a lost connection, this replica does not try to lead until then (uptime nanoseconds):
    /// the others, which heartbeat too, take over first.
    let yieldUntil = Atomic<UInt64>(0)
    /// How long that is: three of the fleet's heartbeats.
    let yieldNs: UInt64

    init(_ session: PostgresSession, replicaId: String, heartbeatMs: Int64) {
        self.session = Mutex(session)
        self.replicaId = replicaId
        self.yieldNs = UInt64(max(1, heartbeatMs)) * 3_000_000
    }

    /// Sets what runs (on an event loop) when a catalog change is announced.
    public func onNotify(_ handler: @escaping @Sendable () -> Void) { notify.withLock { $0 = handler } }

    /// Whether the connection is up (and this replica heartbeating).
    public var isConnected: Bool { connected.load(ordering: .acquiring) }
    /// Connected, and caught up on the catalog since this connection was made.
    public var isCurrent: Bool { connected.load(ordering: .acquiring) && current.load(ordering: .acquiring) }

    /// The connection's number: read it before catching up, and hand it to `caughtUp` after.
    public var connection: Int { generation.load(ordering: .acquiring) }

    /// The caller applied every catalog change up to some point after connection `number` was made;
    /// nothing if the link has reconnected since (announcements may have been lost in between).
    public func caughtUp(connection number: Int) {
        session.withLock { _ in
            if generation.load(ordering: .acquiring) == number && connected.load(ordering: .acquiring) { current.store(true, ordering: .releasing) }
        }
    }

    /// Whether this replica holds the leader's lock over a live connection.
    public var isLeader: Bool { leading.load(ordering: .acquiring) }

    /// Heartbeats, reconnecting if needed, and tries to lead if no one does. Never throws.
    @discardableResult
    public func tick(lead wantsToLead: Bool = true) -> Status {
        session.withLock { s -> Status in
            var fresh = false
            let lostBefore = generation.load(ordering: .acquiring) > 0
            let live = s.connection.map { !$0.isClosed } ?? false
            if !live || s.connection.map(ObjectIdentifier.init) != listenedOn.withLock({ $0 }) {
                current.store(false, ordering: .releasing)
                connected.store(false, ordering: .releasing)
                leading.store(false, ordering: .releasing)
                guard let c = try? s.connected() else { return Status(connected: false, leader: false, fresh: false) }
                fresh = true
                let gen = generation.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
                listenedOn.withLock { $0 = ObjectIdentifier(c) }
                c.addListener(channel: "qf_catalog") { [weak self] _, _ in self?.notify.withLock { $0 }() }
                c.closeFuture.whenComplete { [weak self] _ in
                    // Fencing: the lock went with the connection.
                    guard let self, self.generation.load(ordering: .acquiring) == gen else { return }
                    self.current.store(false, ordering: .releasing)
                    self.leading.store(false, ordering: .releasing)
                    self.connected.store(false, ordering: .releasing)
                }
            }
            do {
                _ = try s.query(
                    """
                    INSERT INTO fleet_replicas (id, started_at, heartbeat_at) VALUES (?, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, \
                    (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
                    """, [.text(replicaId)])
                // A replica back from a lost connection lets the others take over first.
                if fresh && lostBefore { yieldUntil.store(DispatchTime.now().uptimeNanoseconds + yieldNs, ordering: .releasing) }
                let yielding = DispatchTime.now().uptimeNanoseconds < yieldUntil.load(ordering: .acquiring)
                if wantsToLead && !leading.load(ordering: .acquiring) && !yielding {
                    let ok = try s.query("SELECT pg_try_advisory_lock(\(Self.leaderKey)) AS ok", []).rows.first?.int("ok") == 1
                    leading.store(ok, ordering: .releasing)
                } else if !wantsToLead && leading.load(ordering: .acquiring) {
                    _ = try s.query("SELECT pg_advisory_unlock(\(Self.leaderKey))", [])
                    leading.store(false, ordering: .releasing)
                }
                connected.store(true, ordering: .releasing)
            } catch {
                s.disconnect()
                connected.store(false, ordering: .releasing)
                leading.store(false, ordering: .releasing)
            }
            return Status(connected: isConnected, leader: isLeader, fresh: fresh && isConnected)
        }
    }

    /// Leaves the fleet (graceful shutdown): the replica's row goes, the lock is let go with the
    /// connection, so another replica leads at once.
    public func depart() {
        session.withLock { s in
            _ = try? s.query("DELETE FROM fleet_replicas WHERE id = ?", [.text(replicaId)])
            s.disconnect()
        }
        leading.store(false, ordering: .releasing)
        connected.store(false, ordering: .releasing)
    }

    /// Cuts the connection as a network failure would (tests).
    public func cut() {
        session.withLock { s in s.disconnect() }
    }
}

extension Database {
    /// This process's line to the fleet (PostgreSQL only; `nil` on SQLite, where the file belongs
    /// to one process).
    public func fleetLink(replicaId: String, heartbeatMs: Int64, logger: Logger) throws -> FleetLink? {
        guard let postgres else { return nil }
        return FleetLink(
            try PostgresSession(location: postgres, eventLoop: Self.postgresLoops.next(), logger: logger), replicaId: replicaId,
            heartbeatMs: heartbeatMs)
    }
}
