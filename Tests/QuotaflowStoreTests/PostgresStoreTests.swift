import Foundation
import QuotaflowCore
import QuotaflowTestSupport
import Synchronization
import Testing

@testable import QuotaflowStore

/// What only PostgreSQL has: where its password may come from, reconnecting after a lost
/// connection, and a ledger that never commits on the caller's thread.
@Suite struct PostgresStoreTests {
    @Test func thePasswordNeverComesFromTheURL() throws {
        #expect(throws: PostgresLocation.Invalid.self) {
            try PostgresLocation(url: "postgres://qf:secret@db:5432/qf", password: nil, environment: [:])
        }
        #expect(throws: PostgresLocation.Invalid.self) {
            try PostgresLocation(url: "postgres://qf@db/qf?password=x", password: nil, environment: [:])
        }
        #expect(throws: PostgresLocation.Invalid.self) {
            try PostgresLocation(url: "postgres://qf@db/qf?sslmode=allow", password: nil, environment: [:])
        }
        let explicit = try PostgresLocation(url: "postgres://qf@db:6432/quota", password: "from-env", environment: [:])
        #expect(explicit.password == "from-env" && explicit.port == 6432 && explicit.database == "quota" && explicit.user == "qf")
        // Neither the description nor an error names the password.
        #expect(!explicit.description.contains("from-env"))
        #expect(Database.redacted("postgres://qf:hunter2@db/qf") == "(a postgres:// URL)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qf-pgpass-\(Identifier.random(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pgpass = dir + "/pgpass"
        try "# comment\nother:5432:*:qf:wrong\ndb:*:quota:qf:pa\\:ss\\\\word\n*:*:*:*:fallback\n".write(
            toFile: pgpass, atomically: true, encoding: .utf8)
        let fromFile = try PostgresLocation(url: "postgres://qf@db/quota", password: nil, environment: ["PGPASSFILE": pgpass])
        #expect(fromFile.password == "pa:ss\\word")
        let wildcard = try PostgresLocation(url: "postgres://x@elsewhere/y", password: nil, environment: ["PGPASSFILE": pgpass])
        #expect(wildcard.password == "fallback")
        let socket = try PostgresLocation(url: "postgres://qf@/quota?host=/run/postgresql", password: nil, environment: ["PGPASSFILE": pgpass])
        #expect(socket.socketDirectory == "/run/postgresql" && socket.password == "fallback")
    }

    @Test(.enabled(if: ScratchDatabases.postgresURL != nil)) func aLostConnectionIsReopenedOnItsNextUse() async throws {
        let (db, dir) = try tempDatabase(.postgres)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Migrator.bundled(for: db).migrate(db, clock: SystemClock(), logger: quiet)
        try db.writeSync { conn in try conn.trackCatalogChanges() }
        let first = try await db.write { conn in
            try conn.insertTenant(Tenant(id: "t1", name: "one", createdAt: 1, updatedAt: 1))
            return try conn.takeCatalogChanges()
        }
        #expect(first.tenants == ["t1"])
        // The server drops the connection (a restart, a failover, an idle timeout).
        try db.writeSync { conn in conn.disconnect() }
        let second = try await db.write { conn in
            try conn.insertTenant(Tenant(id: "t2", name: "two", createdAt: 1, updatedAt: 1))
            return try conn.takeCatalogChanges()
        }
        // The session state came back with it: catalog changes are still recorded.
        #expect(second.tenants == ["t2"])
        #expect(try db.readSync { conn in try conn.queryOne("SELECT COUNT(*) AS n FROM tenants")?.int("n") } == 2)
    }

    @Test(.enabled(if: ScratchDatabases.postgresURL != nil)) func theLedgerCommitsOnItsOwnThreadOnly() async throws {
        let (db, dir) = try tempDatabase(.postgres)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Migrator.bundled(for: db).migrate(db, clock: SystemClock(), logger: quiet)
        let threads = Mutex<[pthread_t]>([])
        let writer = LedgerWriter(db: db, logger: quiet) { _, _ in threads.withLock { $0.append(pthread_self()) } }
        try await Task.sleep(for: .milliseconds(5))
        let caller = pthread_self()
        #expect(await writer.append(LedgerInlineTests.entry(0)))
        // A round trip to the server must not hold the caller (an event loop, in the server).
        #expect(threads.withLock { $0.count == 1 && pthread_equal($0[0], caller) == 0 })
        await writer.shutdown()
    }
}
