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
    /// Keyed-digest key for end-user identifiers (derived from the master key).
    let userDigestKey: SymmetricKeyBox

    let catalogBox: Mutex<Catalog>
    let reloadLock = Mutex(0)
    let reloadHooks = Mutex<[@Sendable (Catalog, Catalog) -> Void]>([])

    public init(config: AppConfig, db: Database, clock: any WallClock, cipher: CredentialCipher, operatorDigest: String, logger: Logger) {
        self.config = config
        self.db = db
        self.clock = clock
        self.cipher = cipher
        self.operatorDigest = operatorDigest
        self.logger = logger
        self.userDigestKey = SymmetricKeyBox(key: cipher.derivedKey("end-user-digest"))
        self.catalogBox = Mutex(.empty)
    }

    /// The current snapshot (cheap: one lock, one reference).
    public var catalog: Catalog { catalogBox.withLock { $0 } }

    /// Rebuilds the snapshot from the database. Reloads are serialised, so a reload that starts after
    /// a commit always publishes a snapshot that includes it.
    public func reloadCatalog() async throws {
        try await NIOThreadPool.singleton.runIfActive { try self.reloadCatalogSync() }
    }

    public func reloadCatalogSync() throws {
        try reloadLock.withLock { _ in
            let catalog = try db.readSync { conn in
                try conn.transaction(immediate: false) { try CatalogLoader.load(conn, cipher: cipher, logger: logger, now: clock.nowMs()) }
            }
            let old = catalogBox.withLock { c -> Catalog in
                let old = c
                c = catalog
                return old
            }
            for hook in reloadHooks.withLock({ $0 }) { hook(old, catalog) }
        }
    }

    /// Calls `hook(old, new)` after each catalog reload.
    public func onReload(_ hook: @escaping @Sendable (Catalog, Catalog) -> Void) {
        reloadHooks.withLock { $0.append(hook) }
    }

    /// Runs an admin change in one transaction, then republishes the catalog before returning.
    /// A second object with a unique name throws `DuplicateName`.
    public func mutate<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let result = try await db.write(body)
        try await reloadCatalog()
        return result
    }
}

/// A `SymmetricKey` made Sendable for storage in shared state (it is immutable).
struct SymmetricKeyBox: @unchecked Sendable {
    let key: SymmetricKey
}
