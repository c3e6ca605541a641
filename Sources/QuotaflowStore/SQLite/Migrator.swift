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

    /// The migrations shipped inside this module's resource bundle.
    public static func bundled() throws -> Migrator {
        guard let dir = Bundle.module.resourceURL?.appendingPathComponent("migrations") else {
            throw SQLiteError(code: 0, message: "migrations are missing from the resource bundle", sql: "")
        }
        return try Migrator(directory: dir.path)
    }

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

    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Applies what is pending; returns the names applied.
    @discardableResult
    public func migrate(_ db: Database, clock: any WallClock, logger: Logger) throws -> [String] {
        try db.writeSync { conn in
            try conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
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
            let exists = try conn.queryOne("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'") != nil
            guard exists else { return 0 }
            return Int(try conn.queryOne("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")?.int("version") ?? 0)
        }
    }
}
