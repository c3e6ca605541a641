import Foundation
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// Counters and histograms for `GET /metrics`, in the Prometheus text format.
final class Metrics: Sendable {
    struct Histogram {
        static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        static let commitBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1]
        static let sizeBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        var bounds: [Double]
        var counts: [Int64]
        var sum: Double = 0
        var count: Int64 = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ v: Double) {
            for (i, b) in bounds.enumerated() where v <= b { counts[i] += 1 }
            sum += v
            count += 1
        }
    }

    struct RequestKey: Hashable {
        let route: String
        let status: Int
        let reason: String
    }

    struct State {
        var requests: [RequestKey: Int64] = [:]
        var refusedBeforeAuth: [String: Int64] = [:]
        var upstreamLatency: [String: Histogram] = [:]
        var upstreamFailures: [String: Int64] = [:]
        var routing: [String: Int64] = [:]
        var ledgerBatches = Histogram(bounds: Histogram.sizeBuckets)
        var ledgerCommit = Histogram(bounds: Histogram.commitBuckets)
        var probes: [String: Int64] = [:]
        var webhooks: [String: Int64] = [:]
        var cooldowns: Int64 = 0
        var inFlight: Int64 = 0
    }

    let state = Mutex(State())

    func recordRequest(_ e: LedgerEntry) {
        let key = RequestKey(route: e.endpoint, status: e.status, reason: e.reason?.rawValue ?? "")
        state.withLock { s in
            s.requests[key, default: 0] += 1
            if e.resourceId != nil {
                s.routing[e.overflow ? "overflow" : (e.overage == .fallback ? "fallback" : "owned"), default: 0] += 1
                if e.attempts > 1 { s.routing["retried", default: 0] += 1 }
            } else if e.reason == .noCapacity {
                s.routing["no_capacity", default: 0] += 1
            }
        }
    }

    func refusedBeforeAuth(_ reason: ReasonCode) { state.withLock { $0.refusedBeforeAuth[reason.rawValue, default: 0] += 1 } }
    func upstreamFailure(_ p: Provider) { state.withLock { $0.upstreamFailures[p.rawValue, default: 0] += 1 } }
    func upstreamLatency(_ p: Provider, micros: Int64) {
        state.withLock { s in
            var h = s.upstreamLatency[p.rawValue] ?? Histogram(bounds: Histogram.latencyBuckets)
            h.observe(Double(micros) / 1_000_000)
            s.upstreamLatency[p.rawValue] = h
        }
    }
    func ledgerBatch(_ size: Int, commitMicros: Int64) {
        state.withLock {
            $0.ledgerBatches.observe(Double(size))
            $0.ledgerCommit.observe(Double(commitMicros) / 1_000_000)
        }
    }
    func probe(_ outcome: String) { state.withLock { $0.probes[outcome, default: 0] += 1 } }
    func webhook(_ outcome: String) { state.withLock { $0.webhooks[outcome, default: 0] += 1 } }
    func cooled() { state.withLock { $0.cooldowns += 1 } }
    func inFlight(_ delta: Int64) { state.withLock { $0.inFlight += delta } }

    func exposition(gateway: Gateway) -> String {
        let s = state.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        func escape(_ v: String) -> String { v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        func histogram(_ name: String, _ labels: String, _ h: Histogram) {
            let prefix = labels.isEmpty ? "" : labels + ","
            for (i, b) in h.bounds.enumerated() { out += "\(name)_bucket{\(prefix)le=\"\(b)\"} \(h.counts[i])\n" }
            out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(h.count)\n"
            out += "\(name)_sum\(labels.isEmpty ? "" : "{\(labels)}") \(h.sum)\n\(name)_count\(labels.isEmpty ? "" : "{\(labels)}") \(h.count)\n"
        }
        family("quotaflow_requests_total", "counter", "Data-plane requests by route, status and reason code.")
        for (k, v) in s.requests.sorted(by: { ($0.key.route, $0.key.status, $0.key.reason) < ($1.key.route, $1.key.status, $1.key.reason) }) {
            out += "quotaflow_requests_total{route=\"\(k.route)\",status=\"\(k.status)\",reason=\"\(k.reason)\"} \(v)\n"
        }
        family("quotaflow_refused_unauthenticated_total", "counter", "Data-plane requests refused before a key was known.")
        for (k, v) in s.refusedBeforeAuth.sorted(by: { $0.key < $1.key }) { out += "quotaflow_refused_unauthenticated_total{reason=\"\(k)\"} \(v)\n" }
        family("quotaflow_upstream_latency_seconds", "histogram", "Time to the upstream response head, by provider.")
        for (p, h) in s.upstreamLatency.sorted(by: { $0.key < $1.key }) { histogram("quotaflow_upstream_latency_seconds", "provider=\"\(p)\"", h) }
        family("quotaflow_upstream_failures_total", "counter", "Upstream connection failures and timeouts, by provider.")
        for (p, v) in s.upstreamFailures.sorted(by: { $0.key < $1.key }) { out += "quotaflow_upstream_failures_total{provider=\"\(p)\"} \(v)\n" }
        family("quotaflow_routing_decisions_total", "counter", "Routing outcomes: owned, overflow, fallback, retried, no_capacity.")
        for (k, v) in s.routing.sorted(by: { $0.key < $1.key }) { out += "quotaflow_routing_decisions_total{decision=\"\(k)\"} \(v)\n" }
        family("quotaflow_cooldowns_total", "counter", "Resources cooled after a retryable upstream answer.")
        out += "quotaflow_cooldowns_total \(s.cooldowns)\n"
        family("quotaflow_reservations_held", "gauge", "Budget reservations currently held by in-flight requests.")
        out += "quotaflow_reservations_held \(gateway.engine.reservationsHeld)\n"
        let stats = gateway.ledger.statistics
        family("quotaflow_ledger_batch_size", "histogram", "Rows per ledger transaction (group commit).")
        histogram("quotaflow_ledger_batch_size", "", s.ledgerBatches)
        family("quotaflow_ledger_commit_seconds", "histogram", "Ledger write latency: time to commit one batch.")
        histogram("quotaflow_ledger_commit_seconds", "", s.ledgerCommit)
        family("quotaflow_ledger_rows_total", "counter", "Ledger rows committed.")
        out += "quotaflow_ledger_rows_total \(stats.rows)\n"
        family("quotaflow_ledger_write_failures_total", "counter", "Ledger rows that could not be committed.")
        out += "quotaflow_ledger_write_failures_total \(stats.failures)\n"
        family("quotaflow_probes_total", "counter", "Health probes by outcome.")
        for (k, v) in s.probes.sorted(by: { $0.key < $1.key }) { out += "quotaflow_probes_total{outcome=\"\(k)\"} \(v)\n" }
        family("quotaflow_webhook_deliveries_total", "counter", "Webhook delivery attempts by outcome.")
        for (k, v) in s.webhooks.sorted(by: { $0.key < $1.key }) { out += "quotaflow_webhook_deliveries_total{outcome=\"\(k)\"} \(v)\n" }
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
