import Logging
import NIOPosix
import Synchronization

/// The embedded database: one writer connection and a few readers (WAL lets them run alongside
/// the writer). All work runs on a thread pool, never on the event loops, and each connection is
/// used by one thread at a time.
public final class Database: Sendable {
    public let path: String
    let writer: LockedConnection
    let readers: [LockedConnection]
    let nextReader = Atomic<Int>(0)
    let threadPool: NIOThreadPool

    public init(path: String, readers readerCount: Int = 2, threadPool: NIOThreadPool = .singleton) throws {
        self.path = path
        self.threadPool = threadPool
        writer = LockedConnection(try SQLiteConnection(path: path))
        var readers: [LockedConnection] = []
        for _ in 0..<max(1, readerCount) {
            readers.append(LockedConnection(try SQLiteConnection(path: path)))
        }
        self.readers = readers
    }

    /// Runs `body` on the writer connection, on the calling thread (for dedicated threads and start-up).
    public func writeSync<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try writer.mutex.withLock { conn in try body(conn) }
    }

    /// Runs `body` on the writer connection if no one holds it; `nil` (without waiting) if someone does.
    func writeIfFree<T>(_ body: (SQLiteConnection) throws -> T) throws -> T? {
        try writer.mutex.withLockIfAvailable { conn in try body(conn) }
    }

    /// Runs `body` on a reader connection, on the calling thread.
    public func readSync<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        let index = nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count
        return try readers[index].mutex.withLock { conn in try body(conn) }
    }

    /// Runs `body` in a write transaction on the thread pool. A unique constraint that fails
    /// throws `DuplicateName`.
    public func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        do {
            return try await threadPool.runIfActive {
                try self.writeSync { conn in try conn.transaction { try body(conn) } }
            }
        } catch let e as SQLiteError where e.isUniqueViolation {
            throw DuplicateName()
        }
    }

    /// Runs `body` and then `stage` in one write transaction, and `publish` with what `stage` made
    /// after the commit, still holding the writer: publications happen in commit order, and nothing
    /// is published for a write that did not commit.
    public func write<T: Sendable, S>(
        _ body: @escaping @Sendable (SQLiteConnection) throws -> T, stage: @escaping @Sendable (SQLiteConnection) throws -> S,
        publish: @escaping @Sendable (S) -> Void
    ) async throws -> T {
        do {
            return try await threadPool.runIfActive { try self.writeSync(body, stage: stage, publish: publish) }
        } catch let e as SQLiteError where e.isUniqueViolation {
            throw DuplicateName()
        }
    }

    /// `write(_:stage:publish:)` on the calling thread.
    public func writeSync<T: Sendable, S>(
        _ body: (SQLiteConnection) throws -> T, stage: (SQLiteConnection) throws -> S, publish: (S) -> Void
    ) throws -> T {
        try writer.mutex.withLock { conn in
            let (result, staged) = try conn.transaction { (try body(conn), try stage(conn)) }
            publish(staged)
            return result
        }
    }

    /// Runs `body` on a reader connection on the thread pool (a consistent snapshot inside one transaction).
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await threadPool.runIfActive {
            try self.readSync { conn in try conn.transaction(immediate: false) { try body(conn) } }
        }
    }

    /// Whether the database answers a trivial query.
    public func ping() async -> Bool {
        (try? await read { conn in try conn.queryOne("SELECT 1 AS one")?.int("one") }) == 1
    }
}

/// A connection and the lock that gives one thread at a time access to it.
final class LockedConnection: Sendable {
    let mutex: Mutex<SQLiteConnection>

    init(_ connection: SQLiteConnection) { mutex = Mutex(connection) }
}

/// A write would give two objects the same unique name (or id).
public struct DuplicateName: Error, Sendable {
    public init() {}
}
