/// Everything `quotaflow serve` can be told. These initial values are the only table of defaults:
/// `Settings` reads them from here for `--help`, and a test holds the README's table to them.
public struct AppConfig: Sendable {
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    public var host = "127.0.0.1"
    public var port = 8080
    public var databasePath = "./quotaflow.db"
    /// Where the master key is kept; `nil` means `<database>.key`.
    public var masterKeyFile: String?
    /// One of `logLevels` (read by the command, which sets up logging before the server exists).
    public var logLevel = "info"
    /// `text` or `json`.
    public var logFormat = "text"
    /// Largest admin API body.
    public var maxAdminBodyBytes = 1 << 20
    /// A policy document is a whole tenant (ten thousand seats is about 2 MiB).
    public var maxPolicyBodyBytes = 32 << 20
    /// Largest data-plane request body (prompts can be large).
    public var maxRequestBodyBytes = 16 << 20
    /// Largest non-streaming upstream response we buffer to read usage.
    public var maxUpstreamResponseBytes = 64 << 20

    // Upstream time limits, in milliseconds.
    public var connectTimeoutMs: Int64 = 5_000
    /// Time to the response head (first byte).
    public var firstByteTimeoutMs: Int64 = 60_000
    /// Longest silence between two chunks of a response body.
    public var stallTimeoutMs: Int64 = 60_000
    /// Longest whole request, streaming included.
    public var totalTimeoutMs: Int64 = 600_000

    /// Tries per request across resources (first try included).
    public var maxAttempts = 3
    /// Cooldown when an upstream says "slow down" without saying until when.
    public var defaultCooldownMs: Int64 = 30_000
    /// Longest cooldown we guess or accept from rate-limit headers. A usage window's own reset is
    /// taken as it is, even days away.
    public var maxCooldownMs: Int64 = 6 * 3_600_000

    // Subscription windows and OAuth.
    /// A credential whose short window is at this share (percent) takes no new holder or conversation.
    public var windowThresholdPercent = 90
    /// ...unless that window resets within this time.
    public var windowGraceMs: Int64 = 300_000
    /// Longest time a credential's changed window utilization waits before it is written (a change of
    /// status is written at once).
    public var windowPersistMs: Int64 = 5_000
    /// OAuth access tokens are refreshed this long before they expire.
    public var oauthRefreshMarginMs: Int64 = 300_000

    // A fleet of replicas on PostgreSQL.
    /// How often a replica heartbeats and checks for catalog changes it was not told about.
    public var fleetHeartbeatMs: Int64 = 1_000
    /// A replica silent this long is gone: the leader settles its reservations at their worst case.
    public var fleetLeaseMs: Int64 = 10_000

    // Health verifier.
    public var verifierEnabled = true
    /// Consecutive passing probes that admit a pending resource.
    public var admissionProbes = 2
    /// Consecutive failing probes that suspend an active resource.
    public var suspendAfterFailures = 3
    public var probeIntervalMs: Int64 = 300_000
    /// Spacing between the admission probes of one resource.
    public var admissionSpacingMs: Int64 = 1_000
    public var probeTimeoutMs: Int64 = 5_000
    /// Probes kept per resource.
    public var probeHistory = 50

    /// How long SIGTERM waits for in-flight requests and streams.
    public var shutdownGraceMs: Int64 = 30_000
    /// Idle time after which a client connection is closed (also bounds a stalled request head).
    public var clientIdleTimeoutMs: Int64 = 30_000
    /// Longest time a client may take to send a whole request body.
    public var bodyTimeoutMs: Int64 = 30_000

    /// Largest ledger batch per transaction.
    public var ledgerBatchSize = 512

    /// Whether tenant-set URLs may reach loopback and private ranges (link-local and cloud metadata
    /// addresses are refused either way). Off by default; tests, the demo and single-company installs
    /// turn it on.
    public var allowPrivateEgress = false
    /// Digest of the token that may read `/metrics` besides the operator token (`QUOTAFLOW_METRICS_TOKEN`).
    public var metricsTokenDigest: String?
    /// How long a console sign-in lasts.
    public var consoleSessionMs: Int64 = 8 * 3_600_000
    /// Proxies (by IP address, comma-separated) whose `X-Forwarded-Proto: https` marks a request as
    /// having come over TLS, so the console's session cookie is `Secure`. Others' headers are ignored.
    public var trustedProxies = ""

    public init() {}
}
