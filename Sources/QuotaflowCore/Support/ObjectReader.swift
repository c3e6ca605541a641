/// A request field that failed validation: which one, and what to do about it.
public struct FieldError: Error, Sendable, Equatable, CustomStringConvertible {
    public let field: String
    public let message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Present, explicitly null, or absent: what PATCH bodies need to tell apart.
public enum Presence<T> {
    case absent
    case null
    case value(T)

    public var value: T? {
        if case .value(let v) = self { return v }
        return nil
    }

    public var isAbsent: Bool {
        if case .absent = self { return true }
        return false
    }

    /// Applies a patch to an optional field: absent keeps it, null clears it, a value sets it.
    public func apply(to current: T?) -> T? {
        switch self {
        case .absent: return current
        case .null: return nil
        case .value(let v): return v
        }
    }
}

/// Typed, validating access to a JSON object, with field paths in every error.
public struct ObjectReader {
    public let members: [(String, JSONValue)]
    public let path: String

    public init(_ value: JSONValue, path: String = "") throws {
        guard case .object(let members) = value else {
            throw FieldError(path.isEmpty ? "body" : path, "must be a JSON object, got \(value.kindName)")
        }
        self.members = members
        self.path = path
    }

    public func fieldName(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public subscript(key: String) -> JSONValue? { members.last(where: { $0.0 == key })?.1 }

    /// Rejects fields we do not know, so typos do not pass silently.
    public func rejectUnknown(_ allowed: Set<String>) throws {
        for (key, _) in members where !allowed.contains(key) {
            throw FieldError(fieldName(key), "unknown field; allowed fields are \(allowed.sorted().joined(separator: ", "))")
        }
    }

    public func presence<T>(_ key: String, _ convert: (JSONValue, String) throws -> T) throws -> Presence<T> {
        guard let value = self[key] else { return .absent }
        if value.isNull { return .null }
        return .value(try convert(value, fieldName(key)))
    }

    public func optional<T>(_ key: String, _ convert: (JSONValue, String) throws -> T) throws -> T? {
        try presence(key, convert).value
    }

    public func required<T>(_ key: String, _ convert: (JSONValue, String) throws -> T) throws -> T {
        guard let v = try optional(key, convert) else { throw FieldError(fieldName(key), "is required") }
        return v
    }

    public func object(_ key: String) throws -> ObjectReader? {
        guard let value = self[key], !value.isNull else { return nil }
        return try ObjectReader(value, path: fieldName(key))
    }
}

/// A field converter: checks a value and names the field in its error.
public typealias FieldConverter<T> = @Sendable (JSONValue, String) throws -> T

/// Converters for `ObjectReader`.
public enum Field {
    public static func string(maxLength: Int = 200, allowEmpty: Bool = false) -> FieldConverter<String> {
        { value, name in
            guard case .string(let s) = value else { throw FieldError(name, "must be a string, got \(value.kindName)") }
            if !allowEmpty && s.trimmingWhitespace().isEmpty { throw FieldError(name, "must not be empty") }
            if s.utf8.count > maxLength { throw FieldError(name, "must be at most \(maxLength) bytes") }
            if s.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
                throw FieldError(name, "must not contain control characters")
            }
            return s
        }
    }

    /// A short identifier-like name: 1-100 characters, no control characters.
    public static let name: FieldConverter<String> = string(maxLength: 100)
    public static let text: FieldConverter<String> = string(maxLength: 2000, allowEmpty: true)

    public static func int(_ range: ClosedRange<Int64> = 0...Int64.max) -> FieldConverter<Int64> {
        { value, name in
            switch value {
            case .int(let v):
                guard range.contains(v) else { throw FieldError(name, "must be between \(range.lowerBound) and \(range.upperBound)") }
                return v
            case .double(let d):
                if d.rounded() == d { throw FieldError(name, "must be between \(range.lowerBound) and \(range.upperBound)") }
                throw FieldError(name, "must be a whole number")
            default:
                throw FieldError(name, "must be an integer, got \(value.kindName)")
            }
        }
    }

    /// A number (integer or not) within `range`.
    public static func double(_ range: ClosedRange<Double>) -> FieldConverter<Double> {
        { value, name in
            let d: Double
            switch value {
            case .int(let v): d = Double(v)
            case .double(let v): d = v
            default: throw FieldError(name, "must be a number, got \(value.kindName)")
            }
            guard d.isFinite, range.contains(d) else { throw FieldError(name, "must be between \(range.lowerBound) and \(range.upperBound)") }
            return d
        }
    }

    /// Non-negative micro-USD amounts, up to one trillion dollars.
    public static let micros: FieldConverter<Int64> = int(0...1_000_000_000_000_000_000)
    public static let count: FieldConverter<Int64> = int(0...1_000_000_000_000)
    public static let positiveCount: FieldConverter<Int64> = int(1...1_000_000_000_000)

    public static func bool(_ value: JSONValue, _ name: String) throws -> Bool {
        guard case .bool(let b) = value else { throw FieldError(name, "must be true or false, got \(value.kindName)") }
        return b
    }

    public static func enumeration<E: RawRepresentable & CaseIterable & Sendable>(_ type: E.Type) -> FieldConverter<E>
    where E.RawValue == String {
        let allowed = E.allCases.map(\.rawValue).joined(separator: ", ")
        let lookup = Dictionary(uniqueKeysWithValues: E.allCases.map { ($0.rawValue, $0) })
        return { value, name in
            guard case .string(let s) = value else { throw FieldError(name, "must be one of \(allowed)") }
            guard let e = lookup[s] else { throw FieldError(name, "must be one of \(allowed); got '\(s.prefix(40))'") }
            return e
        }
    }

    public static func array<T>(maxCount: Int = 1000, _ element: @escaping FieldConverter<T>) -> FieldConverter<[T]> {
        { value, name in
            guard case .array(let items) = value else { throw FieldError(name, "must be an array, got \(value.kindName)") }
            guard items.count <= maxCount else { throw FieldError(name, "must have at most \(maxCount) items") }
            return try items.enumerated().map { try element($0.element, "\(name)[\($0.offset)]") }
        }
    }

    public static let modelPatterns: FieldConverter<[String]> = array(maxCount: 500) { value, name in
        let s = try string(maxLength: 200)(value, name)
        guard ModelPattern.isValid(s) else { throw FieldError(name, "must be a model name or pattern without spaces") }
        return s
    }

    public static func timestamp(_ value: JSONValue, _ name: String) throws -> Int64 {
        guard case .string(let s) = value, let ms = Timestamp.parse(s) else {
            throw FieldError(name, "must be an RFC 3339 timestamp such as 2026-12-01T00:00:00Z")
        }
        return ms
    }

    public static func url(_ value: JSONValue, _ name: String) throws -> String {
        let s = try string(maxLength: 500)(value, name)
        let lower = s.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), s.count > 8, !s.contains(" ") else {
            throw FieldError(name, "must be an http:// or https:// URL")
        }
        var trimmed = s
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }

    public static func stringMap(_ value: JSONValue, _ name: String) throws -> [String: String] {
        guard case .object(let members) = value else { throw FieldError(name, "must be an object of strings") }
        guard members.count <= 50 else { throw FieldError(name, "must have at most 50 entries") }
        var out: [String: String] = [:]
        for (k, v) in members {
            guard !k.isEmpty, k.utf8.count <= 100 else { throw FieldError("\(name).\(k)", "keys must be 1-100 bytes") }
            out[k] = try string(maxLength: 500, allowEmpty: true)(v, "\(name).\(k)")
        }
        return out
    }
}
