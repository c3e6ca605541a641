import Foundation
import Logging
import QuotaflowCore
import QuotaflowStore
import Synchronization
import Testing

@testable import QuotaflowServer

@Suite(.scoped) struct SecretsTests {
    let logger: Logger = {
        var l = Logger(label: "secrets-test")
        l.logLevel = .critical
        return l
    }()

    func config(_ dir: String) -> AppConfig {
        var c = AppConfig()
        c.databasePath = dir + "/q.db"
        return c
    }

    func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qf-secrets-\(Identifier.random(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aFirstStartCreatesAPrivateKeyFileAndOneOperatorToken() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let printed = Mutex<[String]>([])
        _ = try QuotaflowApp.bootstrap(
            config: config(dir), clock: SystemClock(), logger: logger, masterKey: nil, masterKeyFile: nil, operatorToken: nil,
            printOperatorToken: { t in printed.withLock { $0.append(t) } })
        let keyFile = dir + "/q.db.key"
        let mode = ((try? FileManager.default.attributesOfItem(atPath: keyFile))?[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        #expect(printed.withLock { $0.count } == 1)
        let token = try #require(printed.withLock { $0.first })
        #expect(token.hasPrefix("qf_op_"))
        // Only the digest is stored; a second start prints nothing new and keeps the same token.
        let db = try Database(path: dir + "/q.db")
        let stored = try db.readSync { try $0.setting("operator_token_digest") }
        #expect(stored == SecretDigest.of(token))
        let dump = try db.readSync { conn in try conn.query("SELECT value FROM settings").map { try $0.string("value") } }
        #expect(!dump.joined().contains(token))
        let state = try QuotaflowApp.bootstrap(
            config: config(dir), clock: SystemClock(), logger: logger, masterKey: nil, masterKeyFile: nil, operatorToken: nil,
            printOperatorToken: { t in printed.withLock { $0.append(t) } })
        #expect(printed.withLock { $0.count } == 1)
        #expect(state.operatorDigest == SecretDigest.of(token))
    }

    @Test func aWrongMasterKeyIsRefusedAtStart() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let right = CredentialCipher.generateEncodedKey()
        _ = try QuotaflowApp.bootstrap(
            config: config(dir), clock: SystemClock(), logger: logger, masterKey: right, masterKeyFile: nil, operatorToken: nil,
            printOperatorToken: { _ in })
        #expect(!FileManager.default.fileExists(atPath: dir + "/q.db.key"))
        do {
            _ = try QuotaflowApp.bootstrap(
                config: config(dir), clock: SystemClock(), logger: logger, masterKey: CredentialCipher.generateEncodedKey(), masterKeyFile: nil,
                operatorToken: nil, printOperatorToken: { _ in })
            Issue.record("a wrong key was accepted")
        } catch let e as StartupError {
            #expect(e.description.contains("does not match this database"))
            #expect(!e.description.contains(right))
        }
        // Without any key, a sealed database is refused too (and no new key file is invented).
        #expect(throws: StartupError.self) {
            _ = try QuotaflowApp.bootstrap(
                config: config(dir), clock: SystemClock(), logger: logger, masterKey: nil, masterKeyFile: nil, operatorToken: nil,
                printOperatorToken: { _ in })
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/q.db.key"))
        #expect(throws: StartupError.self) {
            _ = try QuotaflowApp.bootstrap(
                config: config(dir), clock: SystemClock(), logger: logger, masterKey: "not-a-key", masterKeyFile: nil, operatorToken: nil,
                printOperatorToken: { _ in })
        }
        _ = try QuotaflowApp.bootstrap(
            config: config(dir), clock: SystemClock(), logger: logger, masterKey: right, masterKeyFile: nil, operatorToken: nil,
            printOperatorToken: { _ in })
    }

    @Test func settingsComeFromFlagsThenEnvironmentThenFile() throws {
        let file = try Settings.parseFile("# comment\nport = 9000\nQUOTAFLOW_HOST=0.0.0.0\ndatabase = \"/var/lib/q.db\"\nmax_attempts = 2\n")
        let (config, _) = try Settings.resolve(
            flags: ["port": "7000"], environment: ["QUOTAFLOW_PORT": "8000", "QUOTAFLOW_MAX_ATTEMPTS": "5"], file: file)
        #expect(config.port == 7000)
        #expect(config.maxAttempts == 5)
        #expect(config.host == "0.0.0.0")
        #expect(config.databasePath == "/var/lib/q.db")
        #expect(throws: Settings.InvalidSetting.self) { try Settings.parseFile("colour = blue") }
        #expect(throws: Settings.InvalidSetting.self) { try Settings.resolve(flags: ["port": "http"], environment: [:], file: [:]) }
        #expect(throws: Settings.InvalidSetting.self) { try Settings.parseAssignments(["max_attempts"]) }
        #expect(try Settings.parseAssignments(["probe-interval-ms=60000"]) == ["probe_interval_ms": "60000"])
    }
}
