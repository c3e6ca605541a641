import Foundation
import NIOSSL
import PostgresNIO

/// Where a PostgreSQL database is: `postgres://user@host:port/database?sslmode=require`, or a Unix
/// socket directory as `postgres://user@/database?host=/var/run/postgresql`.
///
/// The URL never carries the password (flags and URLs end up in process lists and shell history):
/// it comes from `QUOTAFLOW_DATABASE_PASSWORD`, the config file's `database_password`, or a pgpass
/// file (`PGPASSFILE`, else `~/.pgpass`), as libpq reads it.
public struct PostgresLocation: Sendable, CustomStringConvertible {
    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var socketDirectory: String?
    public var requireTLS: Bool
    var password: String?

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Whether `text` names a PostgreSQL database rather than a SQLite file.
    public static func isURL(_ text: String) -> Bool { text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") }

    public init(url text: String, password explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard Self.isURL(text), let c = URLComponents(string: text) else {
            throw Invalid(description: "the database URL is not a postgres:// URL")
        }
        if c.password != nil {
            throw Invalid(
                description:
                    "the database URL must not carry a password; set QUOTAFLOW_DATABASE_PASSWORD, database_password in the config file, or a pgpass file"
            )
        }
        let query = Dictionary((c.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        for name in query.keys where !["sslmode", "host"].contains(name) {
            throw Invalid(description: "the database URL has the unknown parameter '\(name.prefix(40))' (known: sslmode, host)")
        }
        user = c.user ?? environment["USER"] ?? "postgres"
        host = c.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        port = c.port ?? 5432
        database = String(c.path.drop { $0 == "/" })
        if database.isEmpty { database = user }
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        switch query["sslmode"] ?? "disable" {
        case "disable": requireTLS = false
        case "require", "verify-full": requireTLS = true
        default: throw Invalid(description: "sslmode must be disable, require or verify-full")
        }
        if requireTLS && socketDirectory != nil { throw Invalid(description: "sslmode=require does not apply to a Unix socket") }
        password =
            explicit.flatMap { $0.isEmpty ? nil : $0 }
            ?? Self.pgpass(environment: environment, host: socketDirectory == nil ? host : "localhost", port: port, database: database, user: user)
    }

    public var description: String {
        "postgres://\(user)@\(socketDirectory == nil ? "\(host):\(port)" : "")/\(database)" + (socketDirectory.map { "?host=\($0)" } ?? "")
    }

    var configuration: PostgresConnection.Configuration {
        get throws {
            var config: PostgresConnection.Configuration
            if let socketDirectory {
                config = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
            } else {
                let tls: PostgresConnection.Configuration.TLS =
                    requireTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable
                config = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
            }
            config.options.connectTimeout = .seconds(5)
            return config
        }
    }

    /// The password for this database in a pgpass file: `host:port:database:user:password` lines,
    /// `*` matching anything, `\:` and `\\` escaped; the first match wins.
    static func pgpass(environment: [String: String], host: String, port: Int, database: String, user: String) -> String? {
        let path = environment["PGPASSFILE"] ?? environment["HOME"].map { $0 + "/.pgpass" }
        guard let path, let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            var fields: [String] = []
            var field = ""
            var escaped = false
            for ch in line {
                if escaped {
                    field.append(ch)
                    escaped = false
                } else if ch == "\\" {
                    escaped = true
                } else if ch == ":" && fields.count < 4 {
                    fields.append(field)
                    field = ""
                } else {
                    field.append(ch)
                }
            }
            fields.append(field)
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}
