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
    /// On PostgreSQL, the one-replica lock this process serves under (nil on SQLite).
    public let replica: ReplicaLock?
    /// Keyed-digest key for end-user identifiers (derived from the master key).
    let userDigestKey: SymmetricKeyBox

    let catalogBox: Mutex<Catalog>
    let publishHooks = Mutex<[@Sendable (Catalog, Catalog, CatalogChanges) -> Void]>([])

    public init(
        config: AppConfig, db: Database, clock: any WallClock, cipher: CredentialCipher, operatorDigest: String, logger: Logger,
        replica: ReplicaLock? = nil
    ) {
        self.config = config
        self.replica = replica
        self.db = db
        self.clock = clock
        self.cipher = cipher
        self.operatorDigest = operatorDigest
        self.logger = logger
        self.userDigestKey = SymmetricKeyBox(key: cipher.derivedKey("end-user-digest"))
        self.catalogBox = Mutex(.empty)
    }

    /// Whether this process may serve the data plane: always on SQLite; on PostgreSQL only while it
    /// holds the one-replica lock.
    public var serving: Bool { replica?.isHeld ?? true }

    /// The current snapshot (cheap: one lock, one reference).
    public var catalog: Catalog { catalogBox.withLock { $0 } }

    /// Loads the whole snapshot from the database and starts recording changes (at start).
    public func reloadCatalogSync() throws {
        try db.writeSync { conn in
            try conn.trackCatalogChanges()
            try conn.transaction {
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

    /// Inside the writer's transaction: the next snapshot, built from the changed rows only.
    @Sendable func stage(_ conn: StoreConnection) throws -> (Catalog, CatalogChanges)? {
        let changes = try conn.takeCatalogChanges()
        if changes.isEmpty { return nil }
        return (try CatalogLoader.apply(changes, to: catalog, conn, cipher: cipher, logger: logger, now: clock.nowMs()), changes)
    }

    /// After the commit, still holding the writer: publications follow commit order.
    @Sendable func publish(_ staged: (Catalog, CatalogChanges)?) {
        guard let (next, changes) = staged else { return }
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
