import Logging
import QuotaflowCore

/// One `info` line per data-plane request once its row is built: who, what, where it went and how
/// it ended. No prompt, response, key or credential; the ledger stays the record of account.
struct AccessLog: Sendable {
    let logger: Logger

    func record(_ e: LedgerEntry) {
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "request_id": .string(e.requestId), "tenant": .string(e.tenantId), "project": .string(e.projectId), "endpoint": .string(e.endpoint),
            "model": .string(e.modelRequested), "status": .stringConvertible(e.status), "latency_ms": .string(Self.millis(e.latencyUs)),
        ]
        if let r = e.reason { metadata["reason"] = .string(r.rawValue) }
        if let r = e.resourceId { metadata["resource"] = .string(r) }
        if e.overflow { metadata["overflow"] = "true" }
        if e.usage.total > 0 {
            metadata["tokens_in"] = .stringConvertible(e.usage.input)
            metadata["tokens_out"] = .stringConvertible(e.usage.output)
            metadata["cost_micros"] = .stringConvertible(e.costMicros)
        }
        logger.info("request", metadata: metadata)
    }

    static func millis(_ us: Int64) -> String {
        let tenths = (us + 50) / 100
        return "\(tenths / 10).\(tenths % 10)"
    }
}
