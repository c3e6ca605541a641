import CoreMetrics
import Foundation
import Prometheus
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// Counters and histograms for `GET /metrics`, in the Prometheus text format.
///
/// Events are recorded through swift-metrics handles made by a `PrometheusMetricsFactory` over this
/// gateway's own registry (never the global `MetricsSystem`: tests run several gateways in one
/// process). Handles are made once and kept: the fixed label sets at start, the open-ended ones
/// (route × status × reason) on first use, so a request costs an atomic increment, or one lock and
/// a dictionary hit for the open-ended family. Values that already live elsewhere (reservations,
/// ledger totals, each resource's load and state) are read at scrape time and written by hand.
final class Metrics: Sendable {
    /// Routing outcomes.
    enum Decision: String, CaseIterable {
        case owned, overflow, fallback, retried
        case noCapacity = "no_capacity"
    }

    struct RequestKey: Hashable, Sendable {
        let route: String
        let status: Int
        let reason: String
    }

    /// Help text per family; swift-metrics has no place for it, so it is added to the scrape.
    static let help: [String: String] = [
        "quotaflow_requests_total": "Data-plane requests by route, status and reason code.",
        "quotaflow_refused_unauthenticated_total": "Data-plane requests refused before a key was known.",
        "quotaflow_upstream_latency_seconds": "Time to the upstream response head, by provider.",
        "quotaflow_upstream_failures_total": "Upstream connection failures and timeouts, by provider.",
        "quotaflow_routing_decisions_total": "Routing outcomes: owned, overflow, fallback, retried, no_capacity.",
        "quotaflow_cooldowns_total": "Resources cooled after a retryable upstream answer.",
        "quotaflow_route_reasons_total":
            "Why the router chose a resource: session, session_moved, lease, windows, least_loaded, over_threshold, pinned, passthrough.",
        "quotaflow_limit_hits_total": "429s from upstream: of a usage window (with its reset) or of another cause.",
        "quotaflow_ledger_batch_size": "Rows per ledger transaction (group commit).",
        "quotaflow_ledger_commit_seconds": "Ledger write latency: time to commit one batch.",
        "quotaflow_probes_total": "Health probes by outcome.",
        "quotaflow_webhook_deliveries_total": "Webhook delivery attempts by outcome.",
    ]

    let registry = PrometheusCollectorRegistry()
    private let requests: CounterCache<RequestKey>
    private let refused: CounterCache<ReasonCode>
    private let latency: [Provider: CoreMetrics.Timer]
    private let failures: [Provider: CoreMetrics.Counter]
    private let routing: [Decision: CoreMetrics.Counter]
    private let cooldowns: CoreMetrics.Counter
    private let routeReasons: [RouteReason: CoreMetrics.Counter]
    private let limitHits: [Bool: CoreMetrics.Counter]
    private let ledgerBatches: CoreMetrics.Recorder
    private let ledgerCommit: CoreMetrics.Timer
    private let probes: [Bool: CoreMetrics.Counter]
    private let webhooks: [String: CoreMetrics.Counter]

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["quotaflow_upstream_latency_seconds"] = [
            1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
        ]
        .map { Duration.microseconds(Int64($0 * 1_000)) }
        factory.durationHistogramBuckets["quotaflow_ledger_commit_seconds"] = [
            100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000,
        ]
        .map { Duration.microseconds($0) }
        factory.valueHistogramBuckets["quotaflow_ledger_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
        }
        requests = CounterCache(factory, "quotaflow_requests_total") { [("route", $0.route), ("status", String($0.status)), ("reason", $0.reason)] }
        refused = CounterCache(factory, "quotaflow_refused_unauthenticated_total") { [("reason", $0.rawValue)] }
        latency = Dictionary(
            uniqueKeysWithValues: Provider.allCases.map {
                ($0, CoreMetrics.Timer(label: "quotaflow_upstream_latency_seconds", dimensions: [("provider", $0.rawValue)], factory: factory))
            })
        failures = Dictionary(
            uniqueKeysWithValues: Provider.allCases.map { ($0, counter("quotaflow_upstream_failures_total", [("provider", $0.rawValue)])) })
        routing = Dictionary(
            uniqueKeysWithValues: Decision.allCases.map { ($0, counter("quotaflow_routing_decisions_total", [("decision", $0.rawValue)])) })
        cooldowns = counter("quotaflow_cooldowns_total")
        routeReasons = Dictionary(
            uniqueKeysWithValues: RouteReason.allCases.map { ($0, counter("quotaflow_route_reasons_total", [("reason", $0.rawValue)])) })
        limitHits = [
            true: counter("quotaflow_limit_hits_total", [("cause", "window")]), false: counter("quotaflow_limit_hits_total", [("cause", "other")]),
        ]
        ledgerBatches = CoreMetrics.Recorder(label: "quotaflow_ledger_batch_size", dimensions: [], aggregate: true, factory: factory)
        ledgerCommit = CoreMetrics.Timer(label: "quotaflow_ledger_commit_seconds", dimensions: [], factory: factory)
        probes = [true: counter("quotaflow_probes_total", [("outcome", "pass")]), false: counter("quotaflow_probes_total", [("outcome", "fail")])]
        webhooks = Dictionary(
            uniqueKeysWithValues: ["delivered", "retry", "failed"].map { ($0, counter("quotaflow_webhook_deliveries_total", [("outcome", $0)])) })
    }

    func recordRequest(_ e: LedgerEntry) {
        requests[RequestKey(route: e.endpoint, status: e.status, reason: e.reason?.rawValue ?? "")].increment()
        if e.resourceId != nil {
            routing[e.overflow ? .overflow : (e.overage == .fallback ? .fallback : .owned)]?.increment()
            if e.attempts > 1 { routing[.retried]?.increment() }
            if let reason = e.routeReason { routeReasons[reason]?.increment() }
        } else if e.reason == .noCapacity {
            routing[.noCapacity]?.increment()
        }
    }

    func refusedBeforeAuth(_ reason: ReasonCode) { refused[reason].increment() }
    func upstreamFailure(_ p: Provider) { failures[p]?.increment() }
    func upstreamLatency(_ p: Provider, micros: Int64) { latency[p]?.recordMicroseconds(micros) }
    func ledgerBatch(_ size: Int, commitMicros: Int64) {
        ledgerBatches.record(size)
        ledgerCommit.recordMicroseconds(commitMicros)
    }
    func probe(passed: Bool) { probes[passed]?.increment() }
    /// `delivered`, `retry` or `failed`.
    func webhook(_ outcome: String) { webhooks[outcome]?.increment() }
    func cooled() { cooldowns.increment() }
    func limitHit(windowed: Bool) { limitHits[windowed]?.increment() }

    func exposition(gateway: Gateway) -> String {
        var out = ""
        for line in registry.emitToString().split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, let help = Self.help[String(name)] {
                out += "# HELP \(name) \(help)\n"
            }
            out += line + "\n"
        }
        func family(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        func escape(_ v: String) -> String { v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        family("quotaflow_reservations_held", "gauge", "Budget reservations currently held by in-flight requests.")
        out += "quotaflow_reservations_held \(gateway.engine.reservationsHeld)\n"
        let stats = gateway.ledger.statistics
        family("quotaflow_ledger_rows_total", "counter", "Ledger rows committed.")
        out += "quotaflow_ledger_rows_total \(stats.rows)\n"
        family("quotaflow_ledger_write_failures_total", "counter", "Ledger rows that could not be committed.")
        out += "quotaflow_ledger_write_failures_total \(stats.failures)\n"
        let catalog = gateway.state.catalog
        let runtimes = gateway.engine.resourceSnapshot()
        let now = gateway.state.clock.nowMs()
        family("quotaflow_resource_inflight", "gauge", "In-flight requests per resource.")
        family("quotaflow_resource_load", "gauge", "Load score per resource (highest utilization).")
        family("quotaflow_resource_state", "gauge", "1 for the current state of each resource.")
        for (tenantId, resources) in catalog.resourcesByTenant.sorted(by: { $0.key < $1.key }) {
            for r in resources {
                let labels = "tenant=\"\(escape(tenantId))\",resource=\"\(escape(r.id))\""
                var rt = runtimes[r.id] ?? ResourceRuntime()
                let load = rt.load(now: now, limits: r.resource.limits)
                out += "quotaflow_resource_inflight{\(labels)} \(load.inFlight)\n"
                out += "quotaflow_resource_load{\(labels)} \(Routing.loadScore(load, limits: r.resource.limits))\n"
                out += "quotaflow_resource_state{\(labels),state=\"\(r.resource.state.rawValue)\"} 1\n"
            }
        }
        family("quotaflow_open_connections", "gauge", "Client connections seen by the data plane and still open.")
        out += "quotaflow_open_connections \(gateway.connections.count)\n"
        return out
    }
}

/// Counters of one family whose label sets are open-ended, made on first use and kept.
private final class CounterCache<Key: Hashable & Sendable>: Sendable {
    private let factory: PrometheusMetricsFactory
    private let label: String
    private let dimensions: @Sendable (Key) -> [(String, String)]
    private let made = Mutex<[Key: CoreMetrics.Counter]>([:])

    init(_ factory: PrometheusMetricsFactory, _ label: String, dimensions: @escaping @Sendable (Key) -> [(String, String)]) {
        self.factory = factory
        self.label = label
        self.dimensions = dimensions
    }

    subscript(key: Key) -> CoreMetrics.Counter {
        made.withLock { made in
            if let c = made[key] { return c }
            let c = CoreMetrics.Counter(label: label, dimensions: dimensions(key), factory: factory)
            made[key] = c
            return c
        }
    }
}
