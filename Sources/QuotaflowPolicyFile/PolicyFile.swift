import Crypto
import QuotaflowCore
import Yams

/// A mistake in a policy file: where it is and what to fix.
public struct PolicyFileError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let column: Int
    /// The field as written in the file (`workspaces.engineering.budget.monthly_limit_usd`).
    public let field: String
    public let message: String

    public init(file: String, line: Int, column: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(field.isEmpty ? "" : "\(field): ")\(message)" }
}

/// Where secrets written as references come from: the environment of the admin's machine and its
/// files. Resolved by the CLI only; the server never sees a reference.
public struct SecretSource: Sendable {
    public let environment: [String: String]
    public let readFile: @Sendable (String) throws -> String

    public init(environment: [String: String], readFile: @escaping @Sendable (String) throws -> String) {
        self.environment = environment
        self.readFile = readFile
    }
}

/// A policy file (YAML, one tenant) read into the document the server's policy API takes: money as
/// exact micro-USD, secrets resolved, and the position of every field kept so that an error the
/// server finds names the file's line and column.
public struct PolicyFile: Sendable {
    public struct Position: Sendable, Equatable {
        public let line: Int
        public let column: Int
        public let field: String
    }

    public let file: String
    public let document: JSONValue
    public let positions: [String: Position]
    /// `sha256:` and the hex digest of the file's bytes, recorded with the change set.
    public let digest: String
    public var tenant: String? { document["tenant"]?.stringValue }

    public static func read(_ text: String, file: String, secrets: SecretSource) throws(PolicyFileError) -> PolicyFile {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw Self.syntaxError(error, file: file)
        }
        guard let node else { throw PolicyFileError(file: file, line: 1, column: 1, field: "", message: "the file is empty") }
        var t = Translator(file: file, secrets: secrets)
        let document = try t.top(node)
        let digest = "sha256:" + SHA256.hash(data: Array(text.utf8)).map { b in String(b, radix: 16).leftPadded(2) }.joined()
        return PolicyFile(file: file, document: document, positions: t.positions, digest: digest)
    }

    static func syntaxError(_ error: any Error, file: String) -> PolicyFileError {
        var line = 1
        var column = 1
        var message = "is not valid YAML"
        if let e = error as? YamlError {
            switch e {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                .composer(let context, let problem, let mark, _):
                (line, column) = (mark.line, mark.column)
                message = "is not valid YAML: \(problem)" + (context.map { " (\($0.text))" } ?? "")
            case .duplicatedKeysInMapping(let duplicates, let context):
                (line, column) = (context.mark.line, context.mark.column)
                message = "names \(duplicates.joined(separator: ", ")) twice in one mapping"
            default:
                message = "is not valid YAML: \(e)"
            }
        }
        return PolicyFileError(file: file, line: line, column: column, field: "", message: message)
    }

    /// An error the server answered for a field of the document, placed in the file: the field's
    /// own position, or its nearest enclosing one.
    public func error(field: String?, message: String) -> PolicyFileError {
        var path = field ?? ""
        while !path.isEmpty {
            if let p = positions[path] {
                return PolicyFileError(file: file, line: p.line, column: p.column, field: p.field + (path == field ? "" : ""), message: message)
            }
            if path.hasSuffix("]"), let open = path.lastIndex(of: "[") {
                path = String(path[..<open])
            } else if let dot = path.lastIndex(of: ".") {
                path = String(path[..<dot])
            } else {
                path = ""
            }
        }
        return PolicyFileError(file: file, line: 1, column: 1, field: field ?? "", message: message)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
