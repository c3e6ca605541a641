import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// A failed PostgreSQL call: its SQLSTATE, the server's message and the statement involved (never
/// the bound values, which may hold secrets).
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    /// Five characters (`23505`, `40001`), or empty when the connection failed before the server answered.
    public let sqlState: String
    public let message: String
    public let sql: String

    public var description: String {
        "PostgreSQL error \(sqlState.isEmpty ? "(connection)" : sqlState): \(message)" + (sql.isEmpty ? "" : " [\(sql.prefix(120))]")
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// A serialization failure or deadlock: the transaction can be run again.
    public var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }
}

/// One PostgreSQL connection driven synchronously: `Database` calls it on its thread pool (never
/// on an event loop), and each call waits for postgres-nio's future on the connection's own loop.
/// It reconnects on first use after the connection was lost (outside a transaction), and runs the
/// `setup` statements again on every new connection (session state such as temporary tables).
final class PostgresSession: @unchecked Sendable {
    let location: PostgresLocation
    let eventLoop: any EventLoop
    let logger: Logger
    var setup: [String] = []
    var connection: PostgresConnection?
    var inTransaction = false
    /// `?` placeholders rewritten to `$n`, by statement.
    var numbered: [String: String] = [:]
    static let ids = Mutex(0)

    init(location: PostgresLocation, eventLoop: any EventLoop, logger: Logger) throws {
        self.location = location
        self.eventLoop = eventLoop
        self.logger = logger
        _ = try connected()
    }

    deinit { try? connection?.close().wait() }

    func connected() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        if inTransaction { throw PostgresStoreError(sqlState: "", message: "the connection was lost inside a transaction", sql: "") }
        connection = nil
        let id = Self.ids.withLock { n in
            n += 1
            return n
        }
        do {
            let c = try PostgresConnection.connect(on: eventLoop, configuration: location.configuration, id: id, logger: logger).wait()
            connection = c
        } catch {
            throw Self.storeError(error, sql: "")
        }
        for statement in setup { try execute(statement) }
        return connection!
    }

    /// Closes the connection (tests use it to cut a replica off; the next call reconnects).
    func disconnect() {
        try? connection?.close().wait()
        connection = nil
    }

    /// Runs `sql` with `values` bound to its `?` placeholders; the rows and the number of rows changed.
    func query(_ sql: String, _ values: [SQLValue]) throws -> (rows: [Row], changed: Int) {
        let text = numberedSQL(sql)
        let result: PostgresQueryResult
        do {
            result = try connected().query(PostgresQuery(unsafeSQL: text, binds: Self.bindings(values)), logger: logger).wait()
        } catch {
            throw Self.storeError(error, sql: sql)
        }
        return (try Self.rows(result), result.metadata.rows ?? 0)
    }

    static func bindings(_ values: [SQLValue]) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: binds.appendNull()
            case .int(let v): binds.append(v)
            case .double(let d): binds.append(d)
            case .text(let s): binds.append(s)
            case .blob(let b): binds.append(ByteBuffer(bytes: b))
            case .texts(let a): binds.append(a)
            case .ints(let a): binds.append(a)
            }
        }
        return binds
    }

    static func rows(_ result: PostgresQueryResult) throws -> [Row] {
        var rows: [Row] = []
        rows.reserveCapacity(result.rows.count)
        var columns: ColumnIndex?
        for row in result.rows { rows.append(try Self.row(row, columns: &columns)) }
        return rows
    }

    /// Runs statements separated by `;` at line ends (migrations, setup), one by one.
    func execute(_ sql: String) throws {
        for statement in Self.statements(sql) { _ = try query(statement, []) }
    }

    func numberedSQL(_ sql: String) -> String {
        if let cached = numbered[sql] { return cached }
        let text = Self.number(sql)
        numbered[sql] = text
        return text
    }

    /// `?` outside quotes becomes `$1`, `$2`, ...
    static func number(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var quoted = false
        for ch in sql {
            if ch == "'" { quoted.toggle() }
            if ch == "?" && !quoted {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
        return out
    }

    /// Splits a script at `;` that end a line, keeping `$$ ... $$` bodies whole.
    static func statements(_ sql: String) -> [String] {
        var out: [String] = []
        var current = ""
        var inBody = false
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("--") && current.isEmpty { continue }
            current += line + "\n"
            if line.components(separatedBy: "$$").count % 2 == 0 { inBody.toggle() }
            if !inBody && trimmed.hasSuffix(";") {
                out.append(current)
                current = ""
            }
        }
        if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { out.append(current) }
        return out
    }

    static func row(_ row: PostgresRow, columns: inout ColumnIndex?) throws -> Row {
        var values: [SQLValue] = []
        values.reserveCapacity(row.count)
        var names: [String] = []
        if columns == nil { names.reserveCapacity(row.count) }
        for cell in row {
            if columns == nil { names.append(cell.columnName) }
            guard cell.bytes != nil else {
                values.append(.null)
                continue
            }
            do {
                switch cell.dataType {
                case .int2, .int4, .int8: values.append(.int(try cell.decode(Int64.self)))
                case .float4, .float8: values.append(.double(try cell.decode(Double.self)))
                case .bool: values.append(.int(try cell.decode(Bool.self) ? 1 : 0))
                case .bytea: values.append(.blob(Array(buffer: cell.bytes!)))
                case .numeric:
                    let d = try cell.decode(Decimal.self)
                    let n = NSDecimalNumber(decimal: d)
                    if d == Decimal(n.int64Value) { values.append(.int(n.int64Value)) } else { values.append(.double(n.doubleValue)) }
                default: values.append(.text(try cell.decode(String.self)))
                }
            } catch {
                throw StorageError(cell.columnName, "cannot be read from PostgreSQL type \(cell.dataType)")
            }
        }
        if columns == nil { columns = ColumnIndex(names) }
        return Row(values: values, columns: columns!)
    }

    /// Any error of a call as a store error: a postgres-nio error with its SQLSTATE and the server's
    /// message, nothing bound; a store error as it is.
    static func storeError(_ error: any Error, sql: String) -> PostgresStoreError {
        if let e = error as? PostgresStoreError { return e }
        if let e = error as? PSQLError {
            if let info = e.serverInfo {
                return PostgresStoreError(sqlState: info[.sqlState] ?? "", message: info[.message] ?? "server error", sql: sql)
            }
            return PostgresStoreError(sqlState: "", message: "\(e.code)", sql: sql)
        }
        return PostgresStoreError(sqlState: "", message: "\(type(of: error)): \(error)", sql: sql)
    }
}
