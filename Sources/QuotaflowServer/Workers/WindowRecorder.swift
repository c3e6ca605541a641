import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// Reads the usage windows every answer reports and keeps them: in the engine at once (routing
/// reads them), and in the database coalesced — at once when a window's status or period changes,
/// otherwise at most every `window_persist_ms` per credential, never a write per request. History
/// samples are appended on those changes and otherwise at most every twelve intervals (a minute by
/// default). A restart restores the latest state. Limit hits (429s) are recorded with their cause.
final class WindowRecorder: Sendable {
    struct Persisted: Sendable {
        var signature: String
        var at: Int64
        var pending: Bool
        /// When a history sample was last appended.
        var sampledAt: Int64
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

    var sampleMs: Int64 { persistMs * 12 }

    static func key(_ tenantId: String, _ resourceId: String, _ holder: String) -> String { "\(tenantId)\u{1F}\(resourceId)\u{1F}\(holder)" }

    /// Takes in one answer's headers for the credential `holder` uses on `resource`; returns what they said.
    @discardableResult
    func observe(_ resource: Resource, holder: String, headers: HTTPHeaders, now: Int64) -> WindowReport {
        // Most answers carry no subscription window: they cost one scan of the names, nothing more.
        guard headers.contains(where: { WindowHeaders.mayCarryWindows($0.name) }) else { return WindowReport(readings: []) }
        let report = WindowHeaders.parse(headers.map { ($0.name, $0.value) }, nowMs: now)
        guard !report.isEmpty else { return report }
        let set = engine.observeWindows(resourceId: resource.id, holder: holder, report: report, now: now)
        let key = Self.key(resource.tenantId, resource.id, holder)
        let (persistMs, sampleMs) = (self.persistMs, self.sampleMs)
        let (write, sample) = persisted.withLock { map -> (Bool, Bool) in
            let last = map[key]
            let changed = last?.signature != set.signature
            guard changed || last == nil || now - last!.at >= persistMs else {
                map[key]?.pending = true
                return (false, false)
            }
            let sample = changed || last == nil || now - last!.sampledAt >= sampleMs
            map[key] = Persisted(signature: set.signature, at: now, pending: false, sampledAt: sample ? now : last!.sampledAt)
            return (true, sample)
        }
        if write { save(resource, holder: holder, set: set, sample: sample) }
        return report
    }

    func save(_ resource: Resource, holder: String, set: WindowSet, sample: Bool) {
        let (tenantId, id) = (resource.tenantId, resource.id)
        writer.submit("windows of \(id)") { conn in
            try conn.saveWindows(tenantId: tenantId, resourceId: id, holder: holder, set: set, sample: sample)
        }
    }

    /// Writes what changed since the last write of each credential (called on a timer and at shutdown).
    func flush(catalog: Catalog, now: Int64) {
        let sampleMs = self.sampleMs
        let due = persisted.withLock { map -> [(key: String, sample: Bool)] in
            map.filter(\.value.pending).map(\.key).map { k in
                let sample = now - (map[k]?.sampledAt ?? 0) >= sampleMs
                map[k]?.pending = false
                map[k]?.at = now
                if sample { map[k]?.sampledAt = now }
                return (k, sample)
            }
        }
        guard !due.isEmpty else { return }
        for (key, sample) in due {
            let parts = key.split(separator: "\u{1F}", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, let resource = catalog.resource(parts[1], tenantId: parts[0]),
                let set = engine.windows(resourceId: parts[1], holder: parts[2])
            else { continue }
            save(resource.resource, holder: parts[2], set: set, sample: sample)
        }
    }

    /// Records a 429 with its cause: a usage window's limit (with its reset) or another cause.
    func limitHit(_ resource: Resource, holder: String, report: WindowReport, until: Int64?, cause: String, now: Int64) {
        let (tenantId, id) = (resource.tenantId, resource.id)
        let windows = report.readings.filter(\.rejected).map(\.label).joined(separator: ",")
        metrics.limitHit(windowed: report.limitedUntil != nil)
        writer.submit("limit hit on \(id)") { conn in
            try conn.appendLimitHit(tenantId: tenantId, resourceId: id, holder: holder, at: now, until: until, windows: windows, cause: cause)
        }
    }

    /// Puts the windows saved before a restart back into the engine.
    func restore(_ rows: [(tenantId: String, resourceId: String, holder: String, set: WindowSet)]) {
        for row in rows {
            let report = WindowReport(readings: row.set.readings, status: row.set.status)
            _ = engine.observeWindows(resourceId: row.resourceId, holder: row.holder, report: report, now: row.set.observedAt)
            persisted.withLock {
                $0[Self.key(row.tenantId, row.resourceId, row.holder)] = Persisted(
                    signature: row.set.signature, at: row.set.observedAt, pending: false, sampledAt: row.set.observedAt)
            }
        }
    }
}
