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

    // Each spec names its field of `AppConfig`; the default is read from `AppConfig()`, so the
    // defaults live in one place (the struct) and the help, the README table and `--help` show them.
    static let defaults = AppConfig()
    typealias ConfigField<V> = any WritableKeyPath<AppConfig, V> & Sendable

    static func int<V: FixedWidthInteger & Sendable>(
        _ name: String, _ help: String, _ field: ConfigField<V>, range: ClosedRange<Int64>
    ) -> Spec {
        Spec(name: name, help: help, defaultValue: String(defaults[keyPath: field])) { config, text in
            guard let v = Int64(text.trimmingCharacters(in: .whitespaces)), range.contains(v) else {
                throw InvalidSetting(
                    description: "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(text.prefix(40))'")
            }
            config[keyPath: field] = V(v)
        }
    }

    static func string(_ name: String, _ help: String, _ field: ConfigField<String>) -> Spec {
        Spec(name: name, help: help, defaultValue: defaults[keyPath: field]) { config, text in config[keyPath: field] = text }
    }

    /// A string that may be left unset (an empty value unsets it).
    static func optionalString(_ name: String, _ help: String, _ field: ConfigField<String?>) -> Spec {
        Spec(name: name, help: help, defaultValue: defaults[keyPath: field] ?? "") { config, text in
            config[keyPath: field] = text.isEmpty ? nil : text
        }
    }

    /// One of a fixed list of words, case-insensitive, stored lowercased.
    static func choice(_ name: String, _ help: String, _ field: ConfigField<String>, _ options: [String]) -> Spec {
        Spec(name: name, help: help, defaultValue: defaults[keyPath: field]) { config, text in
            let word = text.trimmingCharacters(in: .whitespaces).lowercased()
            guard options.contains(word) else {
                throw InvalidSetting(description: "\(name) must be one of \(options.joined(separator: ", ")), got '\(text.prefix(40))'")
            }
            config[keyPath: field] = word
        }
    }

    static func bool(_ name: String, _ help: String, _ field: ConfigField<Bool>) -> Spec {
        Spec(name: name, help: help, defaultValue: String(defaults[keyPath: field])) { config, text in
            switch text.lowercased() {
            case "1", "true", "yes", "on": config[keyPath: field] = true
            case "0", "false", "no", "off": config[keyPath: field] = false
            default: throw InvalidSetting(description: "\(name) must be true or false, got '\(text.prefix(40))'")
            }
        }
    }

    /// Every setting, in the README's order.
    public static let all: [Spec] = [
        string("host", "Address to listen on.", \.host),
        int("port", "Port to listen on (0 picks a free one).", \.port, range: 0...65535),
        string(
            "database", "SQLite database file, or postgres://user@host:port/database (password: QUOTAFLOW_DATABASE_PASSWORD or pgpass).",
            \.databasePath),
        optionalString("master_key_file", "File holding the master key (default: <database>.key).", \.masterKeyFile),
        choice("log_level", "trace, debug, info, notice, warning, error or critical.", \.logLevel, AppConfig.logLevels),
        choice("log_format", "text or json.", \.logFormat, ["text", "json"]),
        int("max_request_body_bytes", "Largest data-plane request body.", \.maxRequestBodyBytes, range: 1024...(1 << 30)),
        int("max_admin_body_bytes", "Largest admin API request body.", \.maxAdminBodyBytes, range: 1024...(64 << 20)),
        int("max_policy_body_bytes", "Largest policy document (POST .../policy).", \.maxPolicyBodyBytes, range: 1024...(256 << 20)),
        int("connect_timeout_ms", "Upstream connect timeout.", \.connectTimeoutMs, range: 1...600_000),
        int("first_byte_timeout_ms", "Time allowed until the upstream response head.", \.firstByteTimeoutMs, range: 1...3_600_000),
        int("stall_timeout_ms", "Longest silence between two upstream chunks.", \.stallTimeoutMs, range: 1...3_600_000),
        int("total_timeout_ms", "Longest whole request, streams included.", \.totalTimeoutMs, range: 1...86_400_000),
        int("max_attempts", "Tries per request across resources.", \.maxAttempts, range: 1...10),
        int("default_cooldown_ms", "Cooldown when an upstream gives no reset time.", \.defaultCooldownMs, range: 1...86_400_000),
        int(
            "max_cooldown_ms", "Longest cooldown guessed or taken from rate-limit headers; a usage window's reset is taken as it is.",
            \.maxCooldownMs, range: 1_000...604_800_000),
        int(
            "window_threshold_percent", "A credential whose short usage window is this full takes no new holder or conversation.",
            \.windowThresholdPercent, range: 1...100),
        int("window_grace_ms", "...unless that window resets within this time.", \.windowGraceMs, range: 0...86_400_000),
        int(
            "window_persist_ms", "Longest wait before a credential's changed window utilization is written.", \.windowPersistMs,
            range: 100...3_600_000),
        int(
            "oauth_refresh_margin_ms", "OAuth access tokens are refreshed this long before they expire.", \.oauthRefreshMarginMs,
            range: 0...86_400_000),
        int(
            "fleet_heartbeat_ms", "In a fleet on PostgreSQL, how often each replica heartbeats and looks for catalog changes.",
            \.fleetHeartbeatMs, range: 100...10_000),
        int(
            "fleet_lease_ms", "A replica silent this long is gone; the leader settles its reservations at their worst case.", \.fleetLeaseMs,
            range: 1_000...3_600_000),
        bool("verifier_enabled", "Run the health verifier.", \.verifierEnabled),
        int("admission_probes", "Passing probes in a row that admit a resource.", \.admissionProbes, range: 1...20),
        int("suspend_after_failures", "Failing probes in a row that suspend a resource.", \.suspendAfterFailures, range: 1...100),
        int("probe_interval_ms", "Time between probes of a resource that is in service.", \.probeIntervalMs, range: 1_000...86_400_000),
        int("probe_timeout_ms", "Latency bound of a probe.", \.probeTimeoutMs, range: 100...120_000),
        int("admission_spacing_ms", "Time between the admission probes of a resource.", \.admissionSpacingMs, range: 0...600_000),
        int("shutdown_grace_ms", "How long SIGTERM waits for in-flight requests and streams.", \.shutdownGraceMs, range: 0...3_600_000),
        int("client_idle_timeout_ms", "Idle time after which a client connection is closed.", \.clientIdleTimeoutMs, range: 100...3_600_000),
        int("body_timeout_ms", "Longest time a client may take to send a request body.", \.bodyTimeoutMs, range: 100...3_600_000),
        int("ledger_batch_size", "Largest ledger batch per transaction.", \.ledgerBatchSize, range: 1...100_000),
        bool(
            "allow_private_egress",
            "Let tenant-set URLs (resources, webhooks) reach loopback and private addresses. Link-local and cloud metadata addresses are refused either way.",
            \.allowPrivateEgress),
        int("console_session_ms", "How long a console sign-in lasts.", \.consoleSessionMs, range: 60_000...2_592_000_000),
        string(
            "trusted_proxies",
            "Comma-separated proxy IP addresses whose X-Forwarded-Proto is believed (the console cookie is Secure behind TLS).",
            \.trustedProxies),
    ]

    /// The spec of one setting (for the command's flag help).
    public static func spec(_ name: String) -> Spec? { all.first { $0.name == name } }

    /// Secrets read from the environment or the config file, never from flags.
    public static let secretNames: Set<String> = ["master_key", "operator_token", "metrics_token", "database_password"]

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
    public static func resolve(flags: [String: String], environment: [String: String], file: [String: String]) throws -> (AppConfig, [String: String])
    {
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
