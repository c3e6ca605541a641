import QuotaflowCore

/// A stored value that cannot be read as what the code expects: a missing column, a NULL where a
/// value is required, a wrong type, or JSON that is not the shape it must be. Reading never falls
/// back to a default that could lift a limit; it fails and names the column.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public let column: String
    public let message: String

    public init(_ column: String, _ message: String) {
        self.column = column
        self.message = message
    }

    public var description: String { "stored \(column) \(message)" }
}

/// The column names of a result, by position.
public final class ColumnIndex: Sendable {
    let positions: [String: Int]
    let count: Int

    init(_ names: [String]) {
        var positions: [String: Int] = [:]
        for (i, name) in names.enumerated() where positions[name] == nil { positions[name] = i }
        self.positions = positions
        self.count = names.count
    }
}

/// One result row, read by column name. Accessors for required values throw on NULL or a wrong
/// type; `optional…` accessors return `nil` for NULL only.
public struct Row: Sendable {
    /// The raw values by position, for dumps in tests; read columns by name.
    public let values: [SQLValue]
    let columns: ColumnIndex

    func value(_ name: String) throws(StorageError) -> SQLValue {
        guard let i = columns.positions[name] else { throw StorageError(name, "is not a column of this result") }
        return values[i]
    }

    public func isNull(_ name: String) throws(StorageError) -> Bool { try value(name) == .null }

    /// Whether the result has a column `name`.
    public func has(_ name: String) -> Bool { columns.positions[name] != nil }

    public func int(_ name: String) throws(StorageError) -> Int64 {
        guard let v = try optionalInt(name) else { throw StorageError(name, "is NULL but must have a value") }
        return v
    }

    public func optionalInt(_ name: String) throws(StorageError) -> Int64? {
        switch try value(name) {
        case .null: return nil
        case .int(let v): return v
        default: throw StorageError(name, "must be an integer")
        }
    }

    public func string(_ name: String) throws(StorageError) -> String {
        guard let v = try optionalString(name) else { throw StorageError(name, "is NULL but must have a value") }
        return v
    }

    public func optionalString(_ name: String) throws(StorageError) -> String? {
        switch try value(name) {
        case .null: return nil
        case .text(let s): return s
        default: throw StorageError(name, "must be text")
        }
    }

    public func bool(_ name: String) throws(StorageError) -> Bool {
        switch try int(name) {
        case 0: return false
        case 1: return true
        default: throw StorageError(name, "must be 0 or 1")
        }
    }

    /// A blob, or `nil` for NULL or an empty blob.
    public func blob(_ name: String) throws(StorageError) -> [UInt8]? {
        switch try value(name) {
        case .null: return nil
        case .blob(let b): return b.isEmpty ? nil : b
        default: throw StorageError(name, "must be a blob")
        }
    }

    public func enumeration<E: RawRepresentable>(_ name: String, _ type: E.Type) throws(StorageError) -> E where E.RawValue == String {
        let text = try string(name)
        guard let e = E(rawValue: text) else { throw StorageError(name, "has the unknown value '\(text.prefix(40))'") }
        return e
    }

    public func optionalEnumeration<E: RawRepresentable>(_ name: String, _ type: E.Type) throws(StorageError) -> E? where E.RawValue == String {
        guard try !isNull(name) else { return nil }
        return try enumeration(name, type)
    }

    /// A JSON column decoded with its storage codec.
    public func stored<T: StoredJSON>(_ name: String, _ type: T.Type) throws(StorageError) -> T {
        try T.decode(try json(name), column: name)
    }

    public func optionalStored<T: StoredJSON>(_ name: String, _ type: T.Type) throws(StorageError) -> T? {
        guard let text = try optionalString(name) else { return nil }
        return try T.decode(try Self.parse(text, column: name), column: name)
    }

    /// A JSON column as a tree (free-form documents: audit summaries, payloads, probe checks).
    public func json(_ name: String) throws(StorageError) -> JSONValue {
        try Self.parse(try string(name), column: name)
    }

    static func parse(_ text: String, column: String) throws(StorageError) -> JSONValue {
        do { return try JSONParser.parse(Array(text.utf8)) } catch { throw StorageError(column, "is not valid JSON: \(error.description)") }
    }

    /// A JSON array of strings (model lists, pool ids).
    public func strings(_ name: String) throws(StorageError) -> [String] {
        guard case .array(let items) = try json(name) else { throw StorageError(name, "must be a JSON array") }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw StorageError(name, "must hold strings only") }
            out.append(s)
        }
        return out
    }

    /// A JSON object of strings (attributes).
    public func stringMap(_ name: String) throws(StorageError) -> [String: String] {
        guard case .object(let members) = try json(name) else { throw StorageError(name, "must be a JSON object") }
        var out: [String: String] = [:]
        for (k, v) in members {
            guard case .string(let s) = v else { throw StorageError("\(name).\(k)", "must be a string") }
            out[k] = s
        }
        return out
    }
}
