import AsyncHTTPClient
import Crypto
import Logging
import NIOPosix
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// The shared pieces of a running server, passed to every controller and worker.
public final class AppState: Sendable {
    public let config: AppConfig
    public let db: Database
    public let clock: any WallClock
    public let cipher: CredentialCipher
    public let operatorDigest: String
    public let logger: Logger
    /// On PostgreSQL, this replica's line to the fleet (nil on SQLite).
    public let fleet: FleetLink?
    /// Pokes the fleet service: a catalog change was announced.
    let fleetWake = Wakeup()
    /// The last catalog change (in the fleet's change log) this replica has applied.
    let catalogHead = Atomic<Int64>(0)
    /// Numbers of this replica's own changes (published when they committed, so not applied again),
    /// and those of the write being committed (the writer's transaction; moved over at publication).
    let ownChanges = Mutex<(published: Set<Int64>, staged: [Int64])>(([], []))
    /// Keyed-digest key for end-user identifiers (derived from the master key).
    let userDigestKey: SymmetricKeyBox

    let catalogBox: Mutex<Catalog>
    let publishHooks = Mutex<[@Sendable (Catalog, Catalog, CatalogChanges) -> Void]>([])

    public init(
        config: AppConfig, db: Database, clock: any WallClock, cipher: CredentialCipher, operatorDigest: String, logger: Logger,
        fleet: FleetLink? = nil
    ) {
        self.config = config
        self.fleet = fleet
        self.db = db
        self.clock = clock
        self.cipher = cipher
        self.operatorDigest = operatorDigest
        self.logger = logger
        self.userDigestKey = SymmetricKeyBox(key: cipher.derivedKey("end-user-digest"))
        self.catalogBox = Mutex(.empty)
        fleet?.onNotify { [fleetWake] in fleetWake.poke() }
    }

    /// Whether this process may serve the data plane: always on SQLite; in a fleet only while its
    /// link is up and its catalog caught up since the link last connected (changes announced while
    /// it was down are lost, and a revoked key must not pass).
    public var serving: Bool {
        fleet?.isCurrent ?? true
    }

    /// Whether this process runs the fleet's once-only workers (verifier, outbox, maintenance,
    /// stranded reservations): always on SQLite; in a fleet only while it holds the leader's lock.
    public var leads: Bool { fleet?.isLeader ?? true }

    /// Waits about a second (real time: leadership is decided on the database's clock) or until
    /// shutdown; workers that only the leader runs wait here while another replica leads.
    func untilLeading() async {
        try? await Task.sleep(for: .milliseconds(500))
    }

    /// The current snapshot (cheap: one lock, one reference).
    public var catalog: Catalog { catalogBox.withLock { $0 } }

    /// Loads the whole snapshot from the database and starts recording changes (at start).
    public func reloadCatalogSync() throws {
        try db.writeSync { conn in
            try conn.trackCatalogChanges()
            try conn.transaction {
                // First, so that the snapshot loaded holds every change up to it.
                if fleet != nil { catalogHead.store(try conn.catalogLogHead(), ordering: .releasing) }
                _ = try conn.takeCatalogChanges()
                let catalog = try CatalogLoader.load(conn, cipher: cipher, logger: logger, now: clock.nowMs())
                catalogBox.withLock { $0 = catalog }
            }
        }
    }

    /// Calls `hook(old, new, changes)` after each publication.
    public func onPublish(_ hook: @escaping @Sendable (Catalog, Catalog, CatalogChanges) -> Void) {
        publishHooks.withLock { $0.append(hook) }
    }

    /// Runs a change in one transaction, then publishes the objects it changed (and any that other
    /// writes changed since the last publication) before returning. A second object with a unique
    /// name throws `DuplicateName`.
    public func mutate<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        try await db.write(body, stage: stage, publish: publish)
    }

    /// `mutate` on the calling thread.
    public func mutateSync<T: Sendable>(_ body: (StoreConnection) throws -> T) throws -> T {
        try db.writeSync(body, stage: stage, publish: publish)
    }

    /// Applies the catalog changes other replicas made (and this one's own, again) since the last
    /// ones applied, and publishes them as a local write would. The change log is read first in the
    /// transaction: changes are numbered in commit order, so every change up to the last one read
    /// has committed and the rows loaded after it hold them all.
    public func syncCatalogSync() throws {
        try db.writeSync { conn in
            let head = catalogHead.load(ordering: .acquiring)
            let own = ownChanges.withLock { $0.published }
            let (staged, next) = try conn.transaction { () -> ((Catalog, CatalogChanges)?, Int64) in
                var (changes, next) = try conn.catalogLog(after: head, skipping: own)
                changes.formUnion(try conn.takeCatalogChanges())
                if changes.isEmpty { return (nil, next) }
                return ((try CatalogLoader.apply(changes, to: catalog, conn, cipher: cipher, logger: logger, now: clock.nowMs()), changes), next)
            }
            publish(staged)
            catalogHead.store(next, ordering: .releasing)
            ownChanges.withLock { $0.published = $0.published.filter { $0 > next } }
        }
    }

    /// In a fleet, applies every catalog change committed so far (nothing on SQLite).
    func catchUp() async throws {
        guard fleet != nil else { return }
        try await Database.postgresThreads.runIfActive { try self.syncCatalogSync() }
    }

    /// Inside the writer's transaction: the next snapshot, built from the changed rows only.
    @Sendable func stage(_ conn: StoreConnection) throws -> (Catalog, CatalogChanges)? {
        let changes = try conn.takeCatalogChanges()
        if changes.isEmpty { return nil }
        if fleet != nil {
            let own = try conn.catalogLogOwn()
            ownChanges.withLock { $0.staged = own }
        }
        return (try CatalogLoader.apply(changes, to: catalog, conn, cipher: cipher, logger: logger, now: clock.nowMs()), changes)
    }

    /// After the commit, still holding the writer: publications follow commit order.
    @Sendable func publish(_ staged: (Catalog, CatalogChanges)?) {
        guard let (next, changes) = staged else { return }
        if fleet != nil {
            ownChanges.withLock { o in
                o.published.formUnion(o.staged)
                o.staged = []
            }
        }
        let old = catalogBox.withLock { c -> Catalog in
            let old = c
            c = next
            return old
        }
        for hook in publishHooks.withLock({ $0 }) { hook(old, next, changes) }
    }
}

/// A `SymmetricKey` made Sendable for storage in shared state (it is immutable).
struct SymmetricKeyBox: @unchecked Sendable {
    let key: SymmetricKey
}
