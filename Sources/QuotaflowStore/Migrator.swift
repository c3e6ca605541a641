import Foundation
import Logging
import QuotaflowCore

/// Applies numbered SQL files (`0001_init.sql`, ...) in order, each in its own transaction, and
/// records them in `schema_migrations`. Landed migrations are never edited; new ones are appended.
public struct Migrator: Sendable {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The migrations shipped inside this module's resource bundle for `dialect`: `migrations/` for
    /// SQLite, `migrations/postgres/` for PostgreSQL (two append-only sets, one schema).
    public static func bundled(for dialect: SQLDialect = .sqlite) throws -> Migrator {
        guard var dir = Bundle.module.resourceURL?.appendingPathComponent("migrations") else {
            throw SQLiteError(code: 0, message: "migrations are missing from the resource bundle", sql: "")
        }
        if dialect == .postgres { dir.appendPathComponent("postgres") }
        return try Migrator(directory: dir.path)
    }

    /// The set for `db`'s dialect.
    public static func bundled(for db: Database) throws -> Migrator { try bundled(for: db.dialect) }

    public init(directory: String) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }
        var migrations: [Migration] = []
        for file in files {
            guard let version = Int(file.prefix(while: { $0.isNumber })) else { continue }
            let sql = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            migrations.append(Migration(version: version, name: file, sql: sql))
        }
        self.init(migrations: migrations)
    }

    /// The advisory lock key migrations take on PostgreSQL ("qf-migr").
    static let advisoryLock: Int64 = 0x7166_2d6d_6967_72

    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Applies what is pending; returns the names applied.
    @discardableResult
    public func migrate(_ db: Database, clock: any WallClock, logger: Logger) throws -> [String] {
        try db.writeSync { conn in
            // Replicas starting together on PostgreSQL take turns (a session lock, released below).
            if conn.dialect == .postgres { try conn.run("SELECT pg_advisory_lock(\(Self.advisoryLock))") }
            defer { if conn.dialect == .postgres { _ = try? conn.run("SELECT pg_advisory_unlock(\(Self.advisoryLock))") } }
            try conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
            let applied = Set(try conn.query("SELECT version FROM schema_migrations").map { Int(try $0.int("version")) })
            var done: [String] = []
            for migration in migrations where !applied.contains(migration.version) {
                try conn.transaction {
                    try conn.execute(migration.sql)
                    try conn.run(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        [.int(Int64(migration.version)), .text(migration.name), .int(clock.nowMs())])
                }
                logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
                done.append(migration.name)
            }
            return done
        }
    }

    /// The highest applied version, or 0.
    public func appliedVersion(_ db: Database) throws -> Int {
        try db.readSync { conn in
            let exists =
                switch conn.dialect {
                case .sqlite: try conn.queryOne("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'") != nil
                case .postgres: try conn.queryOne("SELECT to_regclass('schema_migrations')::text AS t")?.optionalString("t") != nil
                }
            guard exists else { return 0 }
            return Int(try conn.queryOne("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")?.int("version") ?? 0)
        }
    }
}
