import QuotaflowCore

/// A value kept in a JSON column, with a storage form of its own, apart from the admin API's
/// validation: extra members (written by a newer version) are tolerated; a missing or invalid
/// member is an error, never a silent default such as "no cap". Members added after a type was
/// first stored name the default that rows written before them mean.
public protocol StoredJSON: Sendable {
    var stored: JSONValue { get }
    init(stored r: StoredReader) throws(StorageError)
}

extension StoredJSON {
    static func decode(_ value: JSONValue, column: String) throws(StorageError) -> Self {
        try Self(stored: try StoredReader(value, path: column))
    }

    /// The JSON text written to the column.
    public var storedText: String { JSONWriter.string(stored) }
}

/// Typed access to one stored JSON object, naming the column and member path in every error.
public struct StoredReader {
    let members: [(String, JSONValue)]
    let path: String

    init(_ value: JSONValue, path: String) throws(StorageError) {
        guard case .object(let members) = value else { throw StorageError(path, "must be a JSON object") }
        self.members = members
        self.path = path
    }

    func value(_ key: String) -> JSONValue? {
        guard let v = members.last(where: { $0.0 == key })?.1, !v.isNull else { return nil }
        return v
    }

    func name(_ key: String) -> String { "\(path).\(key)" }

    public func required<T>(_ key: String, _ read: (JSONValue, String) throws(StorageError) -> T) throws(StorageError) -> T {
        guard let v = value(key) else { throw StorageError(name(key), "is missing") }
        return try read(v, name(key))
    }

    public func optional<T>(_ key: String, _ read: (JSONValue, String) throws(StorageError) -> T) throws(StorageError) -> T? {
        guard let v = value(key) else { return nil }
        return try read(v, name(key))
    }

    /// A member added after the type was first stored: rows written before it mean `missing`.
    public func added<T>(_ key: String, missing: T, _ read: (JSONValue, String) throws(StorageError) -> T) throws(StorageError) -> T {
        guard let v = value(key) else { return missing }
        return try read(v, name(key))
    }

    public func object(_ key: String) throws(StorageError) -> StoredReader {
        try StoredReader(try required(key) { v, _ in v }, path: name(key))
    }
}

/// Readers for `StoredReader`.
public enum Stored {
    public static func int(_ v: JSONValue, _ name: String) throws(StorageError) -> Int64 {
        guard case .int(let n) = v else { throw StorageError(name, "must be an integer") }
        return n
    }

    public static func nonNegative(_ v: JSONValue, _ name: String) throws(StorageError) -> Int64 {
        let n = try int(v, name)
        guard n >= 0 else { throw StorageError(name, "must not be negative") }
        return n
    }

    public static func double(_ v: JSONValue, _ name: String) throws(StorageError) -> Double {
        switch v {
        case .int(let n): return Double(n)
        case .double(let d) where d.isFinite: return d
        default: throw StorageError(name, "must be a number")
        }
    }

    public static func string(_ v: JSONValue, _ name: String) throws(StorageError) -> String {
        guard case .string(let s) = v else { throw StorageError(name, "must be a string") }
        return s
    }

    public static func bool(_ v: JSONValue, _ name: String) throws(StorageError) -> Bool {
        guard case .bool(let b) = v else { throw StorageError(name, "must be true or false") }
        return b
    }

    public static func strings(_ v: JSONValue, _ name: String) throws(StorageError) -> [String] {
        guard case .array(let items) = v else { throw StorageError(name, "must be an array") }
        var out: [String] = []
        for (i, item) in items.enumerated() { out.append(try string(item, "\(name)[\(i)]")) }
        return out
    }

    public static func ints(_ v: JSONValue, _ name: String) throws(StorageError) -> [Int] {
        guard case .array(let items) = v else { throw StorageError(name, "must be an array") }
        var out: [Int] = []
        for (i, item) in items.enumerated() { out.append(Int(try int(item, "\(name)[\(i)]"))) }
        return out
    }

    public static func enumeration<E: RawRepresentable>(_ type: E.Type) -> (JSONValue, String) throws(StorageError) -> E
    where E.RawValue == String {
        { v, name throws(StorageError) in
            let s = try string(v, name)
            guard let e = E(rawValue: s) else { throw StorageError(name, "has the unknown value '\(s.prefix(40))'") }
            return e
        }
    }

    public static func nested<T: StoredJSON>(_ type: T.Type) -> (JSONValue, String) throws(StorageError) -> T {
        { v, name throws(StorageError) in try T(stored: try StoredReader(v, path: name)) }
    }

    public static func list<T: StoredJSON>(_ type: T.Type) -> (JSONValue, String) throws(StorageError) -> [T] {
        { v, name throws(StorageError) in
            guard case .array(let items) = v else { throw StorageError(name, "must be an array") }
            var out: [T] = []
            for (i, item) in items.enumerated() { out.append(try T(stored: try StoredReader(item, path: "\(name)[\(i)]"))) }
            return out
        }
    }
}
