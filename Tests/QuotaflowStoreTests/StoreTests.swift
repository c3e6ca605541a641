import Foundation
import Logging
import QuotaflowCore
import QuotaflowTestSupport
import Synchronization
import Testing

@testable import QuotaflowStore

/// A fresh database of `engine` (SQLite by default) and a temporary directory.
func tempDatabase(_ engine: StoreEngine = .sqlite) throws -> (Database, String) { try ScratchDatabases.open(engine) }

/// The tables of the database, whichever engine.
func tableNames(_ db: Database) throws -> [String] {
    try db.readSync { conn in
        let sql =
            conn.dialect == .sqlite
            ? "SELECT name FROM sqlite_master WHERE type='table'" : "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
        return try conn.query(sql).map { try $0.string("name") }
    }
}

let quiet: Logger = {
    var l = Logger(label: "store-test")
    l.logLevel = .critical
    return l
}()

@Suite struct StoreTests {
    @Test(arguments: StoreEngine.available) func bundledMigrationsApplyOnceAndAreRecorded(_ engine: StoreEngine) throws {
        let (db, dir) = try tempDatabase(engine)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let migrator = try Migrator.bundled(for: db)
        #expect(migrator.migrations.count >= 2)
        #expect(migrator.migrations.map(\.version) == migrator.migrations.map(\.version).sorted())
        let applied = try migrator.migrate(db, clock: SystemClock(), logger: quiet)
        #expect(applied.count == migrator.migrations.count)
        #expect(try migrator.migrate(db, clock: SystemClock(), logger: quiet).isEmpty)
        #expect(try migrator.appliedVersion(db) == migrator.latestVersion)
        #expect(try Set(tableNames(db)).isSuperset(of: ["tenants", "resources", "ledger", "seats", "outbox", "console_sessions"]))
        guard engine == .sqlite else { return }
        let pragmas = try db.readSync { conn in
            (try conn.queryOne("PRAGMA journal_mode")!.string("journal_mode"), try conn.queryOne("PRAGMA foreign_keys")!.int("foreign_keys"))
        }
        #expect(pragmas.0 == "wal" && pragmas.1 == 1)
    }

    @Test(arguments: StoreEngine.available) func aFailingMigrationLeavesNoTrace(_ engine: StoreEngine) throws {
        let (db, dir) = try tempDatabase(engine)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = Migrator(migrations: [
            .init(version: 1, name: "0001_ok.sql", sql: "CREATE TABLE a (x INTEGER);"),
            .init(version: 2, name: "0002_bad.sql", sql: "CREATE TABLE b (y INTEGER); INSERT INTO nowhere VALUES (1);"),
        ])
        #expect(throws: (any Error).self) { try bad.migrate(db, clock: SystemClock(), logger: quiet) }
        let tables = try tableNames(db)
        #expect(tables.contains("a") && !tables.contains("b"))
        #expect(try bad.appliedVersion(db) == 1)
    }

    @Test(arguments: StoreEngine.available) func repositoriesAreScopedByTenant(_ engine: StoreEngine) throws {
        let (db, dir) = try tempDatabase(engine)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Migrator.bundled(for: db).migrate(db, clock: SystemClock(), logger: quiet)
        try db.writeSync { conn in
            for t in ["t1", "t2"] {
                try conn.insertTenant(Tenant(id: t, name: t, createdAt: 1, updatedAt: 1))
                try conn.insertPool(Pool(id: "pool-\(t)", tenantId: t, name: "main", createdAt: 1, updatedAt: 1))
                try conn.insertProject(Project(id: "prj-\(t)", tenantId: t, name: "p", poolIds: ["pool-\(t)"], budget: Budget(monthlyCapMicros: 5)))
                var r = Resource(
                    id: "res-\(t)", tenantId: t, poolId: "pool-\(t)", name: "r", kind: .seat, provider: .anthropic, wireFormat: .anthropic,
                    baseURL: "https://api.anthropic.com", models: ["claude-*"], costBasis: .flatMonthly(feeMicros: 20_000_000),
                    limits: ResourceLimits(maxConcurrency: 2, windows: [UsageWindow(requests: 50, windowSeconds: 18_000)]))
                r.attestation = Attestation(by: "cfo", at: 7)
                try conn.insertResource(r, ciphertext: [1, 2, 3])
            }
        }
        try db.readSync { conn in
            #expect(try conn.pool(tenantId: "t1", id: "pool-t2") == nil)
            #expect(try conn.resource(tenantId: "t1", id: "res-t2") == nil)
            #expect(try conn.project(tenantId: "t2", id: "prj-t1") == nil)
            #expect(try conn.pools(tenantId: "t1").map(\.id) == ["pool-t1"])
            let r = try #require(try conn.resource(tenantId: "t1", id: "res-t1"))
            #expect(r.costBasis == .flatMonthly(feeMicros: 20_000_000) && r.leaseMode == .exclusive)
            #expect(r.limits.windows == [UsageWindow(requests: 50, windowSeconds: 18_000)])
            #expect(r.attestation?.by == "cfo")
            #expect(try conn.project(tenantId: "t1", id: "prj-t1")?.budget.monthlyCapMicros == 5)
            #expect(try conn.liveResourceCount(tenantId: "t1", poolId: "pool-t1") == 1)
        }
        let duplicate = #expect(throws: (any Error).self) {
            try db.writeSync { conn in try conn.insertPool(Pool(id: "dup", tenantId: "t1", name: "main", createdAt: 1, updatedAt: 1)) }
        }
        #expect(duplicate.map(Database.isUniqueViolation) == true)
    }

    @Test(arguments: StoreEngine.available) func ledgerWriterCommitsInBatchesAndSettlesAfterCommit(_ engine: StoreEngine) async throws {
        let (db, dir) = try tempDatabase(engine)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Migrator.bundled(for: db).migrate(db, clock: SystemClock(), logger: quiet)
        let settled = Mutex<[Int]>([])
        let writer = LedgerWriter(db: db, logger: quiet, maxBatch: 64) { items, _ in
            // Every row handed over here is already in the file.
            let count = (try? db.readSync { conn in try conn.queryOne("SELECT COUNT(*) AS n FROM ledger")!.int("n") }) ?? -1
            settled.withLock { $0.append(Int(count)) }
            _ = items
        }
        await withTaskGroup(of: Bool.self) { group in
            for i in 0..<300 {
                group.addTask {
                    var e = LedgerEntry(
                        requestId: "r\(i)", at: Int64(i), startedAt: Int64(i), tenantId: "t", projectId: "p", wireFormat: .openai,
                        endpoint: "chat.completions", modelRequested: "m", status: 200)
                    e.costMicros = 3
                    return await writer.append(LedgerWriter.Item(entry: e, settlement: nil))
                }
            }
            for await ok in group { #expect(ok) }
        }
        let stats = writer.statistics
        #expect(stats.rows == 300)
        #expect(stats.batches < 300)
        let total = try await writer.barrier { conn in try conn.queryOne("SELECT SUM(cost_micros) AS spent FROM ledger")!.int("spent") }
        #expect(total == 900)
        #expect(settled.withLock { $0.last } == 300)
        await writer.shutdown()
        // After shutdown a row is refused rather than silently dropped.
        let late = await writer.append(
            LedgerWriter.Item(
                entry: LedgerEntry(
                    requestId: "late", at: 0, startedAt: 0, tenantId: "t", projectId: "p", wireFormat: .openai, endpoint: "x",
                    modelRequested: "m", status: 200), settlement: nil))
        #expect(!late)
    }

    @Test func onlineBackupIsAConsistentCopy() throws {
        let (db, dir) = try tempDatabase()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Migrator.bundled().migrate(db, clock: SystemClock(), logger: quiet)
        try db.writeSync { conn in
            try conn.transaction {
                for i in 0..<1000 { try conn.insertTenant(Tenant(id: "t\(i)", name: "t\(i)", createdAt: 1, updatedAt: 1)) }
            }
        }
        let target = dir + "/copy.db"
        try db.readSync { conn in try conn.sqlite!.backup(to: target) }
        let copy = try SQLiteConnection(path: target, readOnly: true)
        #expect(try copy.queryOne("SELECT COUNT(*) AS n FROM tenants")?.int("n") == 1000)
        #expect(try copy.queryOne("PRAGMA integrity_check")?.string("integrity_check") == "ok")
    }
}
