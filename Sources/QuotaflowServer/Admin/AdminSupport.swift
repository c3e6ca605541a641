import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// Writes an admin change: one transaction, then the catalog is republished before the call returns
/// (so a revoke is in force when the admin sees the answer).
struct Changes: Sendable {
    let publisher: AppState

    func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        try await publisher.mutate(body)
    }
}

/// What every admin controller uses: reads from the store, writes through `Changes`, the current
/// catalog (for scoping and references), the clock, and the body limits. Controllers get anything
/// else they need (the cipher, the engine, the ledger) by name.
struct AdminEnvironment: Sendable {
    let reads: Database
    let changes: Changes
    let catalog: any CatalogHolder
    let clock: any WallClock
    let maxBodyBytes: Int
    let bodyTimeoutMs: Int64

    init(state: AppState) {
        reads = state.db
        changes = Changes(publisher: state)
        catalog = state
        clock = state.clock
        maxBodyBytes = state.config.maxAdminBodyBytes
        bodyTimeoutMs = state.config.bodyTimeoutMs
    }

    var now: Int64 { clock.nowMs() }

    func body(_ request: Request) async throws -> ObjectReader {
        try await request.jsonObject(limit: maxBodyBytes, timeoutMs: bodyTimeoutMs)
    }

    /// Parses an optional body (empty allowed) for action endpoints such as `/revoke`.
    func optionalBody(_ request: Request) async throws -> ObjectReader? {
        let buffer = try await request.collectAdminBody(limit: maxBodyBytes, timeoutMs: bodyTimeoutMs)
        if buffer.readableBytes == 0 { return nil }
        let value: JSONValue
        do {
            value = try buffer.withUnsafeReadableBytes { try JSONParser.parse(buffer: $0) }
        } catch let e as JSONSyntaxError {
            throw ProblemError.badRequest("the body is not valid JSON: \(e.description)")
        }
        return try validating { try ObjectReader(value) }
    }

    func audit(
        _ conn: StoreConnection, _ who: AdminIdentity, tenant: String?, _ action: String, _ targetType: String, _ targetId: String,
        _ summary: JSONValue = [:]
    ) throws {
        try conn.appendAudit(
            AuditEntry(tenantId: tenant, at: now, actor: who.actor, action: action, targetType: targetType, targetId: targetId, summary: summary))
    }
}

/// Query-string parameters with validation.
struct Query {
    let request: Request

    func string(_ name: String, maxLength: Int = 200) throws -> String? {
        guard let raw = request.uri.queryParameters.get(name) else { return nil }
        guard raw.utf8.count <= maxLength else {
            throw ProblemError(.badRequest, code: "invalid_parameter", "query parameter '\(name)' is too long", field: name)
        }
        return raw.isEmpty ? nil : raw
    }

    func int(_ name: String, range: ClosedRange<Int64>) throws -> Int64? {
        guard let raw = try string(name, maxLength: 30) else { return nil }
        guard let v = Int64(raw), range.contains(v) else {
            throw ProblemError(
                .badRequest, code: "invalid_parameter",
                "query parameter '\(name)' must be an integer between \(range.lowerBound) and \(range.upperBound)", field: name)
        }
        return v
    }

    func time(_ name: String) throws -> Int64? {
        guard let raw = try string(name, maxLength: 40) else { return nil }
        guard let v = Timestamp.parse(raw) else {
            throw ProblemError(
                .badRequest, code: "invalid_parameter", "query parameter '\(name)' must be an RFC 3339 time such as 2026-11-01T00:00:00Z",
                field: name)
        }
        return v
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ name: String, _ type: E.Type) throws -> E? where E.RawValue == String {
        guard let raw = try string(name, maxLength: 40) else { return nil }
        guard let v = E(rawValue: raw) else {
            throw ProblemError(
                .badRequest, code: "invalid_parameter",
                "query parameter '\(name)' must be one of \(E.allCases.map(\.rawValue).joined(separator: ", "))", field: name)
        }
        return v
    }

    var limit: Int { get throws { Int(try int("limit", range: 1...1000) ?? 100) } }

    /// `from`/`to` of a report: by default the current calendar month (UTC) up to now; ten years at most.
    func reportRange(now: Int64) throws -> (from: Int64, to: Int64) {
        let monthStart = BillingPeriod.containing(now, anchor: PeriodAnchor()).start
        let from = try time("from") ?? monthStart
        let to = try time("to") ?? now + 1
        guard to > from else { throw ProblemError(.badRequest, code: "invalid_parameter", "'to' must be after 'from'", field: "to") }
        guard to - from <= 3660 * Forecast.dayMs else {
            throw ProblemError(.badRequest, code: "invalid_parameter", "the range may span at most ten years", field: "from")
        }
        return (from, to)
    }

    /// An opaque cursor holding an integer position.
    func cursor() throws -> Int64? {
        guard let raw = try string("cursor", maxLength: 40) else { return nil }
        guard let v = Int64(raw), v >= 0 else {
            throw ProblemError(.badRequest, code: "invalid_parameter", "query parameter 'cursor' is not a cursor this API returned", field: "cursor")
        }
        return v
    }
}

extension Request {
    var query: Query { Query(request: self) }
}
