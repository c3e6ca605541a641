import Foundation
import Hummingbird
import NIOCore
import QuotaflowCore

/// A submitted HTML form (`application/x-www-form-urlencoded`).
struct ConsoleForm: Sendable {
    static let maxBytes = 256 << 10
    private(set) var values: [String: [String]] = [:]

    init(_ text: String) {
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]) else { continue }
            let value = parts.count == 2 ? Self.decode(parts[1]) ?? "" : ""
            values[name, default: []].append(value)
        }
    }

    static func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }

    /// The first value, trimmed; "" when absent.
    subscript(_ name: String) -> String { values[name]?.first?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }

    func all(_ name: String) -> [String] { values[name] ?? [] }

    /// What the user typed, to fill the form again after a refusal (keys with `_` for `.`, as
    /// templates read them). Forms with a secret field (a credential) are never echoed.
    func echo() -> [String: Any] {
        var out: [String: Any] = [:]
        for (name, list) in values where name != "csrf" {
            out[Self.templateKey(name)] = list.count == 1 ? list[0] : list.joined(separator: ", ")
            for v in list { out[Self.templateKey(name) + "_is_" + Self.templateKey(v)] = true }
        }
        return out
    }

    static func templateKey(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }
}

/// How the fields of a console form become the admin API's JSON body. Field names are the API's
/// own paths (`budget.monthly_cap_micros`), so the API's refusals land next to the right field.
struct FormSpec: Sendable {
    enum Kind: Sendable {
        /// Text; empty is left out.
        case text
        /// Dollars as typed (`8000.00`), sent as micro-USD.
        case usd
        case int
        /// A comma- or line-separated list.
        case list
        /// Checkboxes sharing one name.
        case checkboxes
        /// A date (`2026-12-31`), sent as the end of that day in UTC.
        case date
    }

    let fields: [(name: String, kind: Kind)]
    /// Objects that, in an edit, are removed as a whole when all their fields are empty (a fallback policy),
    /// rather than left holding nulls.
    var clearWhenEmpty: Set<String> = []
    /// In an edit, an empty field clears the value (JSON merge patch null; an empty list).
    var patch = false

    init(fields: [(name: String, kind: Kind)], clearWhenEmpty: Set<String> = []) {
        self.fields = fields
        self.clearWhenEmpty = clearWhenEmpty
    }

    func json(_ form: ConsoleForm) throws(FieldError) -> JSONValue {
        var root: [(String, JSONValue)] = []
        for (name, kind) in fields {
            let raw = form[name]
            let value: JSONValue?
            switch kind {
            case .text: value = raw.isEmpty ? (patch ? .null : nil) : .string(raw)
            case .usd:
                if raw.isEmpty {
                    value = patch ? .null : nil
                } else {
                    let cleaned = raw.replacingOccurrences(of: ",", with: "").replacingOccurrences(of: "$", with: "")
                    do {
                        value = .int(try DecimalUSD.micros(cleaned))
                    } catch {
                        throw FieldError(name, "must be an amount in US dollars such as 8000.00")
                    }
                }
            case .int:
                if raw.isEmpty {
                    value = patch ? .null : nil
                } else {
                    guard let v = Int64(raw) else { throw FieldError(name, "must be a whole number") }
                    value = .int(v)
                }
            case .list:
                let items = raw.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == "\r" })
                    .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                value = items.isEmpty && !patch ? nil : .strings(items)
            case .checkboxes:
                let items = form.all(name).filter { !$0.isEmpty }
                value = items.isEmpty && !patch ? nil : .strings(items)
            case .date:
                if raw.isEmpty {
                    value = patch ? .null : nil
                } else {
                    guard raw.count == 10, let ms = Timestamp.parse(raw + "T23:59:59Z") else {
                        throw FieldError(name, "must be a date such as 2026-12-31")
                    }
                    value = .string(Timestamp.format(ms))
                }
            }
            if let value { Self.insert(value, at: name.split(separator: ".").map(String.init), into: &root) }
        }
        for path in clearWhenEmpty {
            let parts = path.split(separator: ".").map(String.init)
            var node: JSONValue? = .object(root)
            for part in parts { node = node?[part] }
            if let members = node?.objectMembers, members.allSatisfy({ $0.1.isNull }) { Self.insert(.null, at: parts, into: &root) }
        }
        return .object(root)
    }

    static func insert(_ value: JSONValue, at path: [String], into members: inout [(String, JSONValue)]) {
        guard let head = path.first else { return }
        let index = members.firstIndex { $0.0 == head }
        if path.count == 1 {
            if let index { members[index].1 = value } else { members.append((head, value)) }
            return
        }
        var inner = index.flatMap { members[$0].1.objectMembers } ?? []
        insert(value, at: Array(path.dropFirst()), into: &inner)
        if let index { members[index].1 = .object(inner) } else { members.append((head, .object(inner))) }
    }
}

extension Request {
    /// The body of a form post, up to `ConsoleForm.maxBytes`.
    func consoleForm(timeoutMs: Int64) async throws -> ConsoleForm {
        let buffer = try await collectAdminBody(limit: ConsoleForm.maxBytes, timeoutMs: timeoutMs)
        return ConsoleForm(String(buffer: buffer))
    }
}
