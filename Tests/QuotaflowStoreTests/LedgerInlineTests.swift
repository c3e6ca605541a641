import Foundation
import QuotaflowCore
import QuotaflowTestSupport
import Synchronization
import Testing

@testable import QuotaflowStore

/// The ledger's hand-off: an idle writer lets the caller commit its own row on its own thread; a
/// busy one (a batch or an admin write holding the connection) takes the row on its thread, and the
/// caller never waits for the connection.
@Suite struct LedgerInlineTests {
    static func entry(_ i: Int) -> LedgerWriter.Item {
        LedgerWriter.Item(
            entry: LedgerEntry(
                requestId: "r\(i)", at: Int64(i), startedAt: Int64(i), tenantId: "t", projectId: "p", wireFormat: .openai,
                endpoint: "chat.completions", modelRequested: "m", status: 200),
            settlement: nil)
    }

    @Test func anIdleWriterLetsTheCallerCommitAndABusyOneTakesTheRow() async throws {
        let (db, dir) = try tempDatabase()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Migrator.bundled().migrate(db, clock: SystemClock(), logger: quiet)
        let threads = Mutex<[pthread_t]>([])
        let writer = LedgerWriter(db: db, logger: quiet) { _, _ in threads.withLock { $0.append(pthread_self()) } }
        try await Task.sleep(for: .milliseconds(5))
        // Idle: committed by the caller, before `append` first suspends.
        let caller = pthread_self()
        #expect(await writer.append(Self.entry(0)))
        #expect(threads.withLock { $0.count == 1 && pthread_equal($0[0], caller) != 0 })

        // Someone else holds the connection: the row is not committed on the caller's thread, the
        // caller does not block, and the row lands once the connection is free.
        try await Task.sleep(for: .milliseconds(5))
        let release = Mutex(false)
        let holding = Mutex(false)
        let holder = Thread {
            try? db.writeSync { _ in
                holding.withLock { $0 = true }
                while !release.withLock({ $0 }) { usleep(1_000) }
            }
        }
        holder.start()
        while !holding.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
        // The appending task's own thread, up to its first suspension (where an inline commit would run).
        let appender = Mutex<pthread_t?>(nil)
        let appended = Task {
            appender.withLock { $0 = pthread_self() }
            return await writer.append(Self.entry(1))
        }
        try await Task.sleep(for: .milliseconds(20))
        release.withLock { $0 = true }
        #expect(await appended.value)
        let appendedOn = try #require(appender.withLock { $0 })
        #expect(threads.withLock { $0.count == 2 && pthread_equal($0[1], appendedOn) == 0 })
        let rows = try await writer.barrier { conn in try conn.queryOne("SELECT COUNT(*) AS n FROM ledger")!.int("n") }
        #expect(rows == 2)
        await writer.shutdown()
    }

    @Test(arguments: StoreEngine.available) func concurrentAppendsAndBarriersCommitAndSettleEachRowOnce(_ engine: StoreEngine) async throws {
        let (db, dir) = try tempDatabase(engine)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Migrator.bundled(for: db).migrate(db, clock: SystemClock(), logger: quiet)
        let settled = Mutex<[String: Int]>([:])
        let writer = LedgerWriter(db: db, logger: quiet) { items, _ in
            settled.withLock { for i in items { $0[i.entry.requestId, default: 0] += 1 } }
        }
        await withTaskGroup(of: Bool.self) { group in
            for i in 0..<300 {
                group.addTask {
                    if i % 3 == 0 { try? await Task.sleep(for: .milliseconds(Int.random(in: 0...3))) }
                    if i % 25 == 0 { _ = try? await writer.barrier { _ in () } }
                    return await writer.append(Self.entry(i))
                }
            }
            for await ok in group { #expect(ok) }
        }
        let rows = try await writer.barrier { conn in try conn.queryOne("SELECT COUNT(*) AS n FROM ledger")!.int("n") }
        #expect(rows == 300)
        #expect(settled.withLock { $0.count == 300 && $0.values.allSatisfy { $0 == 1 } })
        await writer.shutdown()
    }
}
