import Foundation

/// Every setting `quotaflow serve` reads, with where it comes from: a flag (`--port 8080` or
/// `--set port=8080`), then the environment (`QUOTAFLOW_PORT`), then the config file
/// (`port = 8080`), then the default.
public enum Settings {
    public struct Spec: Sendable {
        public let name: String
        public let help: String
        public let defaultValue: String
        let apply: @Sendable (inout AppConfig, String) throws -> Void

        public var environmentName: String { "QUOTAFLOW_" + name.uppercased() }
    }

    public struct InvalidSetting: Error, CustomStringConvertible {
        public let description: String
    }

    static func int(_ name: String, _ help: String, _ def: Int64, range: ClosedRange<Int64>, _ set: @escaping @Sendable (inout AppConfig, Int64) -> Void)
        -> Spec
    {
        Spec(name: name, help: help, defaultValue: String(def)) { config, text in
            guard let v = Int64(text.trimmingCharacters(in: .whitespaces)), range.contains(v) else {
                throw InvalidSetting(description: "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(text.prefix(40))'")
            }
            set(&config, v)
        }
    }

    static func string(_ name: String, _ help: String, _ def: String, _ set: @escaping @Sendable (inout AppConfig, String) -> Void) -> Spec {
        Spec(name: name, help: help, defaultValue: def) { config, text in set(&config, text) }
    }

    static func bool(_ name: String, _ help: String, _ def: Bool, _ set: @escaping @Sendable (inout AppConfig, Bool) -> Void) -> Spec {
        Spec(name: name, help: help, defaultValue: String(def)) { config, text in
            switch text.lowercased() {
            case "1", "true", "yes", "on": set(&config, true)
            case "0", "false", "no", "off": set(&config, false)
            default: throw InvalidSetting(description: "\(name) must be true or false, got '\(text.prefix(40))'")
            }
        }
    }

    /// The settings that configure the server itself (`master_key_file`, `log_*` and `config` are
    /// read by the command, listed here so they are documented in one place).
    public static let all: [Spec] = [
        string("host", "Address to listen on.", "127.0.0.1") { $0.host = $1 },
        int("port", "Port to listen on (0 picks a free one).", 8080, range: 0...65535) { $0.port = Int($1) },
        string("database", "SQLite database file.", "./quotaflow.db") { $0.databasePath = $1 },
        string("master_key_file", "File holding the master key (default: <database>.key).", "") { _, _ in },
        string("log_level", "trace, debug, info, notice, warning, error or critical.", "info") { _, _ in },
        string("log_format", "text or json.", "text") { _, _ in },
        int("max_request_body_bytes", "Largest data-plane request body.", 16 << 20, range: 1024...(1 << 30)) { $0.maxRequestBodyBytes = Int($1) },
        int("max_admin_body_bytes", "Largest admin API request body.", 1 << 20, range: 1024...(64 << 20)) { $0.maxAdminBodyBytes = Int($1) },
        int("connect_timeout_ms", "Upstream connect timeout.", 5_000, range: 1...600_000) { $0.connectTimeoutMs = $1 },
        int("first_byte_timeout_ms", "Time allowed until the upstream response head.", 60_000, range: 1...3_600_000) { $0.firstByteTimeoutMs = $1 },
        int("stall_timeout_ms", "Longest silence between two upstream chunks.", 60_000, range: 1...3_600_000) { $0.stallTimeoutMs = $1 },
        int("total_timeout_ms", "Longest whole request, streams included.", 600_000, range: 1...86_400_000) { $0.totalTimeoutMs = $1 },
        int("max_attempts", "Tries per request across resources.", 3, range: 1...10) { $0.maxAttempts = Int($1) },
        int("default_cooldown_ms", "Cooldown when an upstream gives no reset time.", 30_000, range: 1...86_400_000) { $0.defaultCooldownMs = $1 },
        int("max_cooldown_ms", "Longest cooldown taken from upstream headers.", 21_600_000, range: 1_000...604_800_000) { $0.maxCooldownMs = $1 },
        bool("verifier_enabled", "Run the health verifier.", true) { $0.verifierEnabled = $1 },
        int("admission_probes", "Passing probes in a row that admit a resource.", 2, range: 1...20) { $0.admissionProbes = Int($1) },
        int("suspend_after_failures", "Failing probes in a row that suspend a resource.", 3, range: 1...100) { $0.suspendAfterFailures = Int($1) },
        int("probe_interval_ms", "Time between probes of a resource that is in service.", 300_000, range: 1_000...86_400_000) {
            $0.probeIntervalMs = $1
        },
        int("probe_timeout_ms", "Latency bound of a probe.", 5_000, range: 100...120_000) { $0.probeTimeoutMs = $1 },
        int("admission_spacing_ms", "Time between the admission probes of a resource.", 1_000, range: 0...600_000) { $0.admissionSpacingMs = $1 },
        int("shutdown_grace_ms", "How long SIGTERM waits for in-flight requests and streams.", 30_000, range: 0...3_600_000) {
            $0.shutdownGraceMs = $1
        },
        int("client_idle_timeout_ms", "Idle time after which a client connection is closed.", 30_000, range: 100...3_600_000) {
            $0.clientIdleTimeoutMs = $1
        },
        int("body_timeout_ms", "Longest time a client may take to send a request body.", 30_000, range: 100...3_600_000) {
            $0.bodyTimeoutMs = $1
        },
        int("ledger_batch_size", "Largest ledger batch per transaction.", 512, range: 1...100_000) { $0.ledgerBatchSize = Int($1) },
        bool(
            "allow_private_egress", "Let tenant-set URLs reach loopback and private addresses (link-local and metadata never).", false
        ) { $0.allowPrivateEgress = $1 },
    ]

    /// Secrets read from the environment or the config file, never from flags.
    public static let secretNames: Set<String> = ["master_key", "operator_token", "metrics_token"]

    /// Parses a config file: `key = value` lines (or `QUOTAFLOW_KEY=value`), `#` comments.
    public static func parseFile(_ text: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw InvalidSetting(description: "config file line \(n + 1): expected 'name = value'")
            }
            var key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            if key.hasPrefix("quotaflow_") { key.removeFirst("quotaflow_".count) }
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            guard all.contains(where: { $0.name == key }) || secretNames.contains(key) else {
                throw InvalidSetting(description: "config file line \(n + 1): unknown setting '\(key.prefix(60))'")
            }
            out[key] = value
        }
        return out
    }

    /// Resolves every setting: flags, then environment, then config file, then defaults.
    public static func resolve(flags: [String: String], environment: [String: String], file: [String: String]) throws -> (AppConfig, [String: String]) {
        var config = AppConfig()
        var values: [String: String] = [:]
        for spec in all {
            let value = flags[spec.name] ?? environment[spec.environmentName] ?? file[spec.name]
            if let value {
                try spec.apply(&config, value)
                values[spec.name] = value
            }
        }
        return (config, values)
    }

    /// `--set name=value` pairs.
    public static func parseAssignments(_ items: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for item in items {
            guard let eq = item.firstIndex(of: "=") else { throw InvalidSetting(description: "--set needs name=value, got '\(item.prefix(60))'") }
            let key = item[..<eq].lowercased().replacingOccurrences(of: "-", with: "_")
            guard all.contains(where: { $0.name == key }) else { throw InvalidSetting(description: "unknown setting '\(key.prefix(60))'") }
            out[key] = String(item[item.index(after: eq)...])
        }
        return out
    }
}
