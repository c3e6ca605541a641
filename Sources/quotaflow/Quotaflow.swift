import ArgumentParser
import Foundation
import Logging
import QuotaflowCore
import QuotaflowServer
import QuotaflowStore

@main
struct QuotaflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quotaflow",
        abstract: "A self-hosted broker that pools a company's AI capacity into private, tenant-isolated pools.",
        subcommands: [Serve.self, Migrate.self, Demo.self, Backup.self, OperatorToken.self, Plan.self, Apply.self, Export.self],
        defaultSubcommand: Serve.self)
}

/// Options shared by the commands that open the database.
struct ConfigOptions: ParsableArguments {
    @Option(help: "Config file of 'name = value' lines (env: QUOTAFLOW_CONFIG).")
    var config: String?
    @Option(help: flagHelp("host"))
    var host: String?
    @Option(help: flagHelp("port"))
    var port: Int?
    @Option(help: flagHelp("database"))
    var database: String?
    @Option(name: .customLong("master-key-file"), help: flagHelp("master_key_file"))
    var masterKeyFile: String?
    @Option(name: .customLong("log-level"), help: flagHelp("log_level"))
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: flagHelp("log_format"))
    var logFormat: String?
    @Option(name: .customLong("set"), help: "Any other setting as name=value; see the README for the list. Repeatable.")
    var assignments: [String] = []

    struct Resolved {
        var config: AppConfig
        var values: [String: String]
        var masterKey: String?
        var masterKeyFile: String?
        var operatorToken: String?
        var databasePassword: String?
        var metricsToken: String?
        var logLevel: Logger.Level
        var json: Bool
    }

    func resolve() throws -> Resolved {
        let env = ProcessInfo.processInfo.environment
        var file: [String: String] = [:]
        if let path = config ?? env["QUOTAFLOW_CONFIG"] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("cannot read the config file \(path)")
            }
            file = try Settings.parseFile(text)
        }
        var flags = try Settings.parseAssignments(assignments)
        if let host { flags["host"] = host }
        if let port { flags["port"] = String(port) }
        if let database { flags["database"] = database }
        if let masterKeyFile { flags["master_key_file"] = masterKeyFile }
        if let logLevel { flags["log_level"] = logLevel }
        if let logFormat { flags["log_format"] = logFormat }
        let (resolvedConfig, values) = try Settings.resolve(flags: flags, environment: env, file: file)
        var config = resolvedConfig
        // Settings checked the word against `AppConfig.logLevels`, which are swift-log's levels.
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        if let metrics = env["QUOTAFLOW_METRICS_TOKEN"] ?? file["metrics_token"], !metrics.isEmpty {
            guard metrics.count >= 16 else { throw ValidationError("QUOTAFLOW_METRICS_TOKEN must be at least 16 characters") }
            config.metricsTokenDigest = SecretDigest.of(metrics)
        }
        return Resolved(
            config: config, values: values, masterKey: env["QUOTAFLOW_MASTER_KEY"] ?? file["master_key"], masterKeyFile: config.masterKeyFile,
            operatorToken: env["QUOTAFLOW_OPERATOR_TOKEN"] ?? file["operator_token"],
            databasePassword: env["QUOTAFLOW_DATABASE_PASSWORD"] ?? file["database_password"], logLevel: level, json: config.logFormat == "json")
    }
}

/// A flag's help from its setting: meaning, environment variable and default.
private func flagHelp(_ name: String) -> ArgumentHelp {
    guard let spec = Settings.spec(name) else { return ArgumentHelp() }
    let fallback = spec.defaultValue.isEmpty ? "" : "; default \(spec.defaultValue)"
    return ArgumentHelp("\(spec.help) (env: \(spec.environmentName)\(fallback))")
}

enum LogSetup {
    static func bootstrap(level: Logger.Level, json: Bool) -> Logger {
        LoggingSystem.bootstrap { label in
            var h = LineLogHandler(label: label, format: json ? .json : .text)
            h.logLevel = level
            return h
        }
        return Logger(label: "quotaflow")
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("quotaflow: \(message)\n".utf8))
    exit(1)
}

/// Unbuffered standard output, so lines appear at once even when piped.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
