import Logging
import PostgresNIO

/// The SQL a connection speaks. Almost every statement is written once for both; the few that
/// differ (date buckets, change tracking, deferred foreign keys) ask the connection's dialect.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// One database connection, SQLite or PostgreSQL, with the calls the repositories use: statements
/// with `?` placeholders, rows read by column name, and transactions.
///
/// Not thread-safe by itself: `Database` hands each connection to one thread at a time.
public final class StoreConnection: @unchecked Sendable {
    enum Backend {
        case sqlite(SQLiteConnection)
        case postgres(PostgresSession)
    }

    let backend: Backend
    public let dialect: SQLDialect

    init(_ sqlite: SQLiteConnection) {
        backend = .sqlite(sqlite)
        dialect = .sqlite
    }

    init(_ postgres: PostgresSession) {
        backend = .postgres(postgres)
        dialect = .postgres
    }

    /// A connection of its own to a SQLite file (tools and tests that read a file directly).
    public convenience init(sqlitePath: String, readOnly: Bool = false) throws {
        self.init(try SQLiteConnection(path: sqlitePath, readOnly: readOnly))
    }

    /// The SQLite connection underneath, for what only SQLite has (online backup).
    public var sqlite: SQLiteConnection? {
        if case .sqlite(let c) = backend { return c }
        return nil
    }

    /// Runs one or more statements without results or parameters.
    public func execute(_ sql: String) throws {
        switch backend {
        case .sqlite(let c): try c.execute(sql)
        case .postgres(let p): try p.execute(sql)
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue] = []) throws -> Int {
        switch backend {
        case .sqlite(let c): return try c.run(sql, values)
        case .postgres(let p): return try p.query(sql, values).changed
        }
    }

    public func query(_ sql: String, _ values: [SQLValue] = []) throws -> [Row] {
        switch backend {
        case .sqlite(let c): return try c.query(sql, values)
        case .postgres(let p): return try p.query(sql, values).rows
        }
    }

    /// Streams rows to `body`; on SQLite without collecting them, for exports of any size.
    public func forEach(_ sql: String, _ values: [SQLValue] = [], _ body: (Row) throws -> Void) throws {
        switch backend {
        case .sqlite(let c): try c.forEach(sql, values, body)
        case .postgres(let p): for row in try p.query(sql, values).rows { try body(row) }
        }
    }

    public func queryOne(_ sql: String, _ values: [SQLValue] = []) throws -> Row? {
        switch backend {
        case .sqlite(let c): return try c.queryOne(sql, values)
        case .postgres(let p): return try p.query(sql, values).rows.first
        }
    }

    /// Runs `body` in a transaction; rolls back when it throws. A write (`immediate`) on SQLite takes
    /// the write lock at once; on PostgreSQL it is SERIALIZABLE and runs again, up to five times, when
    /// the server reports a serialization failure or deadlock. A read is one consistent snapshot.
    public func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        try transaction(isolation: immediate ? .serializable : .snapshot, body)
    }

    /// How a PostgreSQL transaction sees others (SQLite's transactions are all serializable).
    public enum Isolation: Sendable {
        /// Writes: as if one at a time.
        case serializable
        /// Writes whose statements check what they change themselves (conditional updates of
        /// counters, inserts): each statement sees what committed before it, rows it changes are locked.
        case readCommitted
        /// Reads: one consistent snapshot.
        case snapshot
    }

    public func transaction<T>(isolation: Isolation, _ body: () throws -> T) throws -> T {
        switch backend {
        case .sqlite(let c): return try c.transaction(immediate: isolation != .snapshot, body)
        case .postgres(let p):
            var attempt = 0
            while true {
                do {
                    return try p.transaction(isolation, body)
                } catch let e as PostgresStoreError where e.isRetryable && attempt < 4 {
                    attempt += 1
                }
            }
        }
    }

    /// Checks foreign keys at the commit instead of per statement, for the rest of this transaction.
    public func deferForeignKeys() throws {
        try execute(dialect == .sqlite ? "PRAGMA defer_foreign_keys = ON" : "SET CONSTRAINTS ALL DEFERRED")
    }

    /// A live PostgreSQL connection and `sql` numbered for it, to run without this object's lock
    /// (`nil` when it must reconnect first, or on SQLite).
    func postgresPrepared(_ sql: String) -> (PostgresConnection, String, Logger)? {
        guard case .postgres(let p) = backend, let c = p.connection, !c.isClosed else { return nil }
        return (c, p.numberedSQL(sql), p.logger)
    }

    /// `postgresPrepared` after reconnecting (blocking; on the thread pool).
    func postgresReconnected(_ sql: String) throws -> (PostgresConnection, String, Logger)? {
        guard case .postgres(let p) = backend else { return nil }
        return (try p.connected(), p.numberedSQL(sql), p.logger)
    }

    /// Closes a PostgreSQL connection (the next call reconnects); nothing on SQLite.
    public func disconnect() {
        if case .postgres(let p) = backend { p.disconnect() }
    }

    /// Statements run again on every new PostgreSQL connection (session state); run once on SQLite.
    func addSetup(_ sql: String) throws {
        switch backend {
        case .sqlite(let c): try c.execute(sql)
        case .postgres(let p):
            p.setup.append(sql)
            try p.execute(sql)
        }
    }
}

extension PostgresSession {
    func transaction<T>(_ isolation: StoreConnection.Isolation, _ body: () throws -> T) throws -> T {
        let begin =
            switch isolation {
            case .serializable: "BEGIN ISOLATION LEVEL SERIALIZABLE"
            case .readCommitted: "BEGIN ISOLATION LEVEL READ COMMITTED"
            case .snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            }
        _ = try query(begin, [])
        inTransaction = true
        do {
            let result = try body()
            // Still inside: a connection lost during COMMIT must fail, not reconnect and "commit" nothing.
            _ = try query("COMMIT", [])
            inTransaction = false
            return result
        } catch {
            inTransaction = false
            if connection?.isClosed == false { _ = try? query("ROLLBACK", []) }
            throw error
        }
    }
}
