import Foundation
import Logging
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import QuotaflowTestSupport
import Testing

@testable import QuotaflowServer

/// Until budgets are shared through the database, one process serves a PostgreSQL database: a
/// second one does not start, and one that loses its lock refuses requests until it has it back.
@Suite(.enabled(if: ScratchDatabases.postgresURL != nil)) struct PostgresReplicaTests {
    @Test func aSecondReplicaIsRefusedAndALostLockStopsServingUntilItIsBack() async throws {
        try await withTestScope {
            let server = try await TestServer.start(engine: .postgres)
            let url = server.state.config.databasePath
            #expect(try await server.request(.GET, "/readyz").json["replica_lock"] == .bool(true))

            // A second process on the same database stops before serving anything.
            let second = #expect(throws: StartupError.self) { _ = try TestServer.assemble(engine: .postgres, database: url) }
            #expect(second?.description.contains("another Quotaflow process is serving this PostgreSQL database") == true)

            // The lock's connection drops and someone else takes the lock meanwhile.
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let other = try Database.open(url, password: nil, logger: logger)
            try other.writeSync { conn in
                _ = try conn.query(
                    """
                    SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() \
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """)
                _ = try conn.query("SELECT pg_advisory_lock(\(0x7166_2d72_6570 as Int64))")
            }
            try await server.eventually("the replica notices", timeout: .seconds(5)) {
                try await server.request(.GET, "/readyz").status == 503
            }
            let ready = try await server.request(.GET, "/readyz")
            #expect(ready.json["replica_lock"] == .bool(false) && ready.json["database"] == .bool(true))
            let refused = try await server.chat(key: "qf_sk_whatever")
            #expect(refused.status == 503 && refused.header("x-quotaflow-reason") == "no_capacity")
            #expect(refused.header("retry-after") == "1")

            // The other holder lets go: the replica takes the lock again and serves.
            try other.writeSync { conn in _ = try conn.query("SELECT pg_advisory_unlock(\(0x7166_2d72_6570 as Int64))") }
            try await server.eventually("the replica holds the lock again", timeout: .seconds(5)) {
                try await server.request(.GET, "/readyz").status == 200
            }
            #expect(try await server.chat(key: "qf_sk_whatever").status == 401)
            other.close()
        }
    }
}
