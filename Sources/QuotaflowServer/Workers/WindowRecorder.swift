import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// Reads the usage windows every answer reports and keeps them: in the engine at once (routing
/// reads them), and in the database coalesced — at once when a window's status or period changes,
/// otherwise at most every `window_persist_ms` per credential, never a write per request. A restart
/// restores them. Limit hits (429s) are recorded with their cause.
final class WindowRecorder: Sendable {
    struct Persisted: Sendable {
        var signature: String
        var at: Int64
        var pending: Bool
    }

    let engine: AdmissionEngine
    let writer: StateWriter
    let metrics: Metrics
    let persistMs: Int64
    let persisted = Mutex<[String: Persisted]>([:])

    init(engine: AdmissionEngine, writer: StateWriter, metrics: Metrics, persistMs: Int64) {
        self.engine = engine
        self.writer = writer
        self.metrics = metrics
        self.persistMs = persistMs
    }

    /// Takes in one answer's headers for the credential `holder` uses on `resource`; returns what they said.
    @discardableResult
    func observe(_ resource: Resource, holder: String, headers: HTTPHeaders, now: Int64) -> WindowReport {
        let report = WindowHeaders.parse(headers.map { ($0.name, $0.value) }, nowMs: now)
        guard !report.isEmpty else { return report }
        let set = engine.observeWindows(resourceId: resource.id, holder: holder, report: report, now: now)
        let key = "\(resource.id)\u{1F}\(holder)"
        let write = persisted.withLock { map -> Bool in
            let last = map[key]
            let changed = last?.signature != set.signature
            if changed || last == nil || now - last!.at >= persistMs {
                map[key] = Persisted(signature: set.signature, at: now, pending: false)
                return true
            }
            map[key]?.pending = true
            return false
        }
        if write { save(resource, holder: holder, set: set) }
        return report
    }

    func save(_ resource: Resource, holder: String, set: WindowSet) {
        let (tenantId, id) = (resource.tenantId, resource.id)
        writer.submit("windows of \(id)") { conn in
            try conn.saveWindows(tenantId: tenantId, resourceId: id, holder: holder, set: set, sample: true)
        }
    }

    /// Writes what changed since the last write of each credential (called on a timer and at shutdown).
    func flush(catalog: Catalog) {
        let due = persisted.withLock { map -> [String] in
            let keys = map.filter(\.value.pending).map(\.key)
            for k in keys { map[k]?.pending = false }
            return keys
        }
        guard !due.isEmpty else { return }
        let resources = Dictionary(catalog.resourcesByTenant.values.flatMap { $0 }.map { ($0.id, $0.resource) }, uniquingKeysWith: { a, _ in a })
        for key in due {
            let parts = key.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, let resource = resources[parts[0]], let set = engine.windows(resourceId: parts[0], holder: parts[1]) else {
                continue
            }
            save(resource, holder: parts[1], set: set)
        }
    }

    /// Records a 429 with its cause: a usage window's limit (with its reset) or another cause.
    func limitHit(_ resource: Resource, holder: String, report: WindowReport, until: Int64?, cause: String, now: Int64) {
        let (tenantId, id) = (resource.tenantId, resource.id)
        let windows = report.readings.filter { $0.rejected || $0.utilization >= 1 }.map(\.label).joined(separator: ",")
        metrics.limitHit(windowed: report.limitedUntil != nil)
        writer.submit("limit hit on \(id)") { conn in
            try conn.appendLimitHit(tenantId: tenantId, resourceId: id, holder: holder, at: now, until: until, windows: windows, cause: cause)
        }
    }

    /// Puts the windows saved before a restart back into the engine.
    func restore(_ rows: [(resourceId: String, holder: String, set: WindowSet)]) {
        for row in rows {
            let report = WindowReport(readings: row.set.readings, status: row.set.status, evidence: [])
            _ = engine.observeWindows(resourceId: row.resourceId, holder: row.holder, report: report, now: row.set.observedAt)
            persisted.withLock {
                $0["\(row.resourceId)\u{1F}\(row.holder)"] = Persisted(signature: row.set.signature, at: row.set.observedAt, pending: false)
            }
        }
    }
}
