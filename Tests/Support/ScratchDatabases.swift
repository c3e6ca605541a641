import Foundation
import Logging
import QuotaflowCore
import QuotaflowStore

/// The two stores a suite runs against. PostgreSQL takes part when `QUOTAFLOW_TEST_POSTGRES` names a
/// server the tests may create databases on (`scripts/test` starts one; without it only SQLite runs,
/// and `scripts/test` refuses to run at all).
public enum StoreEngine: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    /// The engines this run covers.
    public static var available: [StoreEngine] { ScratchDatabases.postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }
}

/// Fresh, empty databases for one test each: a SQLite file in a temporary directory, or a new
/// database on the test PostgreSQL server.
public enum ScratchDatabases {
    public static let postgresURL: String? = ProcessInfo.processInfo.environment["QUOTAFLOW_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }

    static let quiet: Logger = {
        var l = Logger(label: "scratch")
        l.logLevel = .critical
        return l
    }()

    /// One connection to the server's maintenance database, shared, for CREATE DATABASE.
    static let admin: Result<Database, any Error> = Result {
        guard let url = postgresURL else { throw ScratchError(description: "QUOTAFLOW_TEST_POSTGRES is not set") }
        return try Database(postgres: try PostgresLocation(url: url, password: nil), readers: 1, logger: quiet)
    }

    public struct ScratchError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The URL of a new empty PostgreSQL database on the test server.
    public static func postgresDatabase() throws -> String {
        guard let url = postgresURL, var c = URLComponents(string: url) else { throw ScratchError(description: "QUOTAFLOW_TEST_POSTGRES is not set") }
        let name = "qf_" + Identifier.random(12).lowercased().filter { $0.isLetter || $0.isNumber }
        try admin.get().writeSync { conn in try conn.execute("CREATE DATABASE \(name)") }
        c.path = "/" + name
        return c.string!
    }

    /// `(location, directory)`: where a database of `engine` lives, and a temporary directory for
    /// the test's other files (the SQLite file itself for SQLite).
    public static func location(_ engine: StoreEngine) throws -> (location: String, dir: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qf-\(Identifier.random(10))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        switch engine {
        case .sqlite: return (dir + "/quotaflow.db", dir)
        case .postgres: return (try postgresDatabase(), dir)
        }
    }

    /// An opened, unmigrated database of `engine`, and its temporary directory.
    public static func open(_ engine: StoreEngine) throws -> (Database, String) {
        let (location, dir) = try location(engine)
        return (try Database.open(location, password: nil, logger: quiet), dir)
    }
}

extension ScratchDatabases {
    /// Tests running servers on PostgreSQL at once. A server holds nine connections (a writer, three readers,
    /// four for shared counters, the fleet's line) and a test runs at most two or three servers, within the
    /// test cluster's 500.
    public static let servers = Slots(16)

    /// A counting semaphore for tasks.
    public actor Slots {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []

        public init(_ count: Int) { free = count }

        public func acquire() async {
            if free > 0 {
                free -= 1
                return
            }
            await withCheckedContinuation { waiting.append($0) }
        }

        public func release() {
            if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
        }
    }
}
