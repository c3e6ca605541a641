import CSQLite

/// A failed SQLite call: result code, message and the statement involved.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// The extended result code (`SQLITE_CONSTRAINT_UNIQUE`, ...); its low byte is the primary code.
    public let code: Int32
    public let message: String
    public let sql: String

    public init(code: Int32, message: String, sql: String) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    public var description: String { "SQLite error \(code): \(message)" + (sql.isEmpty ? "" : " [\(sql.prefix(120))]") }

    /// A UNIQUE or PRIMARY KEY constraint failed, told by the extended result code.
    public var isUniqueViolation: Bool { code == 2067 || code == 1555 }  // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
    public var isConstraint: Bool { code & 0xFF == SQLITE_CONSTRAINT }
}

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
    /// Arrays (`TEXT[]`, `BIGINT[]`), bound whole on PostgreSQL (the fleet's shared counters);
    /// SQLite has no arrays and refuses them.
    case texts([String])
    case ints([Int64])
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(nilLiteral: ()) { self = .null }

    public static func text(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
    public static func int(_ v: Int64?) -> SQLValue { v.map { .int($0) } ?? .null }
    public static func bool(_ b: Bool) -> SQLValue { .int(b ? 1 : 0) }
}

/// One open SQLite database handle.
///
/// Not thread-safe by itself: `Database` serialises access to each connection with a lock and runs
/// the calls on a thread pool, never on the event loops. Opened with `SQLITE_OPEN_FULLMUTEX` as a
/// second line of defence.
public final class SQLiteConnection: @unchecked Sendable {
    let handle: OpaquePointer
    var statements: [String: Statement] = [:]

    public init(path: String, readOnly: Bool = false) throws {
        if !readOnly { FileModes.restrict(databasePath: path) }
        var db: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_URI
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open database"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: "\(message) (\(path))", sql: "")
        }
        handle = db
        sqlite3_busy_timeout(db, 5000)
        sqlite3_extended_result_codes(db, 1)
        if !readOnly {
            try execute("PRAGMA journal_mode=WAL")
            // NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash or
            // power loss can take the last transactions, which is the documented trade-off.
            try execute("PRAGMA synchronous=NORMAL")
        }
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit {
        for statement in statements.values { statement.finalize() }
        sqlite3_close_v2(handle)
    }

    func error(_ rc: Int32, _ sql: String) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements without results.
    public func execute(_ sql: String) throws {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? "error"
            sqlite3_free(errmsg)
            throw SQLiteError(code: rc, message: message, sql: sql)
        }
    }

    /// A cached prepared statement for `sql`, reset and ready to bind.
    public func prepare(_ sql: String) throws -> Statement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql) }
        let statement = Statement(connection: self, handle: stmt, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue] = []) throws -> Int {
        let statement = try prepare(sql)
        try statement.bind(values)
        while try statement.step() {}
        return Int(sqlite3_changes(handle))
    }

    public func query(_ sql: String, _ values: [SQLValue] = []) throws -> [Row] {
        let statement = try prepare(sql)
        try statement.bind(values)
        var rows: [Row] = []
        while try statement.step() { rows.append(statement.row()) }
        return rows
    }

    /// Streams rows to `body` without collecting them, for exports of any size.
    public func forEach(_ sql: String, _ values: [SQLValue] = [], _ body: (Row) throws -> Void) throws {
        let statement = try prepare(sql)
        try statement.bind(values)
        while try statement.step() { try body(statement.row()) }
    }

    public func queryOne(_ sql: String, _ values: [SQLValue] = []) throws -> Row? {
        let statement = try prepare(sql)
        try statement.bind(values)
        let row = try statement.step() ? statement.row() : nil
        statement.reset()
        return row
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Runs `body` in a transaction; rolls back when it throws.
    public func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        try run(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
        do {
            let result = try body()
            try run("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Copies this database into `path` with SQLite's online backup API (consistent while others write).
    /// The file is created readable by its owner only.
    public func backup(to path: String) throws {
        FileModes.createPrivate(path)
        var dest: OpaquePointer?
        var rc = sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil)
        guard rc == SQLITE_OK, let dest else {
            if let dest { sqlite3_close_v2(dest) }
            throw SQLiteError(code: rc, message: "cannot open backup target \(path)", sql: "")
        }
        defer { sqlite3_close_v2(dest) }
        guard let backup = sqlite3_backup_init(dest, "main", handle, "main") else {
            throw SQLiteError(code: sqlite3_errcode(dest), message: String(cString: sqlite3_errmsg(dest)), sql: "backup")
        }
        repeat {
            rc = sqlite3_backup_step(backup, 256)
            if rc == SQLITE_BUSY || rc == SQLITE_LOCKED { sqlite3_sleep(20) }
        } while rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED
        sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE else { throw SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(dest)), sql: "backup") }
    }
}

/// A prepared statement owned by one connection.
public final class Statement {
    unowned let connection: SQLiteConnection
    let handle: OpaquePointer
    let sql: String

    init(connection: SQLiteConnection, handle: OpaquePointer, sql: String) {
        self.connection = connection
        self.handle = handle
        self.sql = sql
    }

    func finalize() { sqlite3_finalize(handle) }

    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func bind(_ values: [SQLValue]) throws {
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(handle, index)
            case .int(let v): rc = sqlite3_bind_int64(handle, index, v)
            case .double(let d): rc = sqlite3_bind_double(handle, index, d)
            case .text(let s): rc = sqlite3_bind_text(handle, index, s, -1, csqlite_transient())
            case .blob(let b):
                rc = b.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), csqlite_transient()) }
            case .texts, .ints: rc = SQLITE_MISMATCH
            }
            guard rc == SQLITE_OK else { throw connection.error(rc, sql) }
        }
    }

    /// Advances; `true` when a row is available.
    public func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let err = connection.error(rc, sql)
            sqlite3_reset(handle)
            throw err
        }
    }

    /// Column names of the result, looked up once per prepared statement.
    var columnIndex: ColumnIndex?

    func row() -> Row {
        let count = sqlite3_column_count(handle)
        let index: ColumnIndex
        if let cached = columnIndex, cached.count == Int(count) {
            index = cached
        } else {
            index = ColumnIndex((0..<count).map { String(cString: sqlite3_column_name(handle, $0)) })
            columnIndex = index
        }
        var values: [SQLValue] = []
        values.reserveCapacity(Int(count))
        for i in 0..<count {
            switch sqlite3_column_type(handle, i) {
            case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(handle, i)))
            case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(handle, i)))
            case SQLITE_TEXT: values.append(.text(String(cString: sqlite3_column_text(handle, i))))
            case SQLITE_BLOB:
                let n = Int(sqlite3_column_bytes(handle, i))
                if n > 0, let p = sqlite3_column_blob(handle, i) {
                    values.append(.blob(Array(UnsafeRawBufferPointer(start: p, count: n))))
                } else {
                    values.append(.blob([]))
                }
            default: values.append(.null)
            }
        }
        return Row(values: values, columns: index)
    }
}
