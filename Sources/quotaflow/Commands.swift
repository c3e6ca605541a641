import ArgumentParser
import Foundation
import Logging
import QuotaflowCore
import QuotaflowServer
import QuotaflowStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let resolved = try options.resolve()
        let logger = LogSetup.bootstrap(level: resolved.logLevel, json: resolved.json)
        do {
            let db = try Database.open(resolved.config.databasePath, password: resolved.databasePassword, logger: logger)
            let migrator = try Migrator.bundled(for: db)
            let applied = try migrator.migrate(db, clock: SystemClock(), logger: logger)
            print(applied.isEmpty ? "the database is up to date (version \(migrator.latestVersion))" : "applied \(applied.joined(separator: ", "))")
        } catch {
            fail("\(error)")
        }
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the database consistently while the server runs (SQLite's online backup API).")

    @OptionGroup var options: ConfigOptions
    @Option(help: "The file to write the copy to.")
    var to: String
    @Flag(help: "Overwrite the target if it exists.")
    var force = false

    func run() async throws {
        let resolved = try options.resolve()
        let source = resolved.config.databasePath
        if PostgresLocation.isURL(source) {
            fail("backup copies a SQLite file; back up PostgreSQL with its own tools (pg_dump, or base backups and WAL archiving)")
        }
        do {
            try DatabaseBackup.run(database: source, to: to, force: force)
            print("backed up \(source) to \(to); keep the master key file with it")
        } catch {
            fail(error.description)
        }
    }
}

struct OperatorToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operator-token", abstract: "Replace the stored operator token and print the new one (shown once).")

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Confirm the reset; the old token stops working.")
    var reset = false

    func run() async throws {
        guard reset else { fail("pass --reset to replace the operator token") }
        let resolved = try options.resolve()
        let logger = LogSetup.bootstrap(level: resolved.logLevel, json: resolved.json)
        do {
            let db = try Database.open(resolved.config.databasePath, password: resolved.databasePassword, logger: logger)
            try Migrator.bundled(for: db).migrate(db, clock: SystemClock(), logger: logger)
            let token = try Secrets.resetOperatorToken(db: db)
            print(
                "New operator token (shown once):\n  \(token)\nRestart the server for it to take effect; QUOTAFLOW_OPERATOR_TOKEN, when set, still wins."
            )
        } catch {
            fail("\(error)")
        }
    }
}
