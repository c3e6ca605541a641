import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle
import Synchronization

/// The running data plane and its workers: engine, ledger writer, upstream client, verifier.
public final class Runtime: Sendable {
    public let state: AppState
    let engine = AdmissionEngine()
    let ledger: LedgerWriter
    /// Upstream, probe and webhook calls, with the egress rule for tenant-set URLs.
    let clients: UpstreamClients
    let connections = ConnectionRegistry()
    let metrics = Metrics()
    let verifier: Verifier
    let alerts: Alerts
    let migrationsAppliedFlag: Atomic<Bool>

    public init(state: AppState, resolver: any HostResolver = SystemResolver()) throws {
        self.state = state
        self.clients = UpstreamClients(config: state.config, resolver: resolver, clock: state.clock)
        let engine = self.engine
        let metrics = self.metrics
        let alerts = Alerts(state: state, engine: engine, metrics: metrics)
        self.alerts = alerts
        self.ledger = LedgerWriter(db: state.db, logger: state.logger, maxBatch: state.config.ledgerBatchSize) { items, micros in
            let settled = engine.settle(items.compactMap { item in item.settlement.map { ($0, item.entry.at) } })
            alerts.check(settled)
            metrics.ledgerBatch(items.count, commitMicros: micros)
        }
        self.verifier = Verifier(state: state, engine: engine, clients: clients, metrics: metrics)
        let applied = (try? Migrator.bundled().appliedVersion(state.db)) == (try? Migrator.bundled().latestVersion)
        self.migrationsAppliedFlag = Atomic(applied)
        try recomputeCountersSync()
        let runtime = self
        state.onReload { old, new in runtime.catalogChanged(old: old, new: new) }
    }

    public var migrationsApplied: Bool { migrationsAppliedFlag.load(ordering: .relaxed) }

    /// Background services, in start order (they stop in reverse, after the HTTP server has drained).
    public var services: [any Service] {
        [
            ClosureService(name: "http-client") { [clients] in
                try? await gracefulShutdown()
                await clients.shutdown()
            },
            ClosureService(name: "ledger") { [ledger] in
                try? await gracefulShutdown()
                ledger.shutdown()
            },
            VerifierService(verifier: verifier, enabled: state.config.verifierEnabled),
            OutboxService(runtime: self),
            MaintenanceService(runtime: self),
        ]
    }

    func registerRoutes(router: Router<AppRequestContext>, admin: RouterGroup<AppRequestContext>, kit: AdminKit) {
        let controller = DataPlaneController(runtime: self)
        controller.register(on: router)
        LedgerController(kit: kit, runtime: self).register(on: admin)
        HealthController(kit: kit, runtime: self).register(on: admin)
        BudgetsController(kit: kit, runtime: self).register(on: admin)
        SeatsController(kit: kit, runtime: self).register(on: admin)
        UsageReportsController(kit: kit, runtime: self).register(on: admin)
        CapacityReportsController(kit: kit, runtime: self).register(on: admin)
        router.get("metrics") { [self] request, _ in
            // Metrics name every tenant and resource: only the operator (or the metrics token) reads them.
            guard let token = request.bearerToken, token.utf8.count <= 256 else { throw ProblemError.unauthorized }
            let digest = SecretDigest.of(token)
            guard SecretDigest.equal(digest, state.operatorDigest) || state.config.metricsTokenDigest.map({ SecretDigest.equal(digest, $0) }) == true
            else { throw ProblemError.unauthorized }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.exposition(runtime: self))))
        }
    }

    public func verify(tenantId: String, resourceId: String) async throws -> JSONValue {
        try await verifier.probeNow(tenantId: tenantId, resourceId: resourceId)
    }

    // MARK: upstream calls that end when the client leaves

    /// Sends a streaming upstream request and returns at its head; cancelled if the client connection closes first.
    func execute(_ request: HTTPClientRequest, resource: RoutableResource, channel: any Channel, timeoutMs: Int64) async throws
        -> HTTPClientResponse
    {
        let http = try await clients.client(for: resource.target, checked: resource.egressChecked, use: .streaming)
        let logger = state.logger
        let task = Task { try await http.execute(request, timeout: .milliseconds(timeoutMs), logger: logger) }
        connections.watch(channel) { task.cancel() }
        defer { connections.unwatch(channel) }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// Sends an upstream request and reads the whole answer in one task; cancelled if the client leaves first.
    /// Throws only when no answer head arrived; a body that fails later comes back in `bodyError`.
    func fetch(
        url: String, resource: RoutableResource, headers: HTTPHeaders, body: [UInt8], channel: any Channel, timeoutMs: Int64, limit: Int
    ) async throws -> UpstreamAnswer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers = headers
        request.body = .bytes(ByteBuffer(bytes: body))
        let http = try await clients.client(for: resource.target, checked: resource.egressChecked, use: .whole)
        let logger = state.logger
        let task = Task {
            let response = try await http.execute(request, timeout: .milliseconds(timeoutMs), logger: logger)
            // A failure after the head is not a connection failure: the upstream answered (and may have
            // charged), so it is reported as such and never retried elsewhere.
            do {
                return UpstreamAnswer(status: response.status.code, headers: response.headers, body: try await response.body.collect(upTo: limit))
            } catch {
                return UpstreamAnswer(status: response.status.code, headers: response.headers, body: nil, bodyError: error)
            }
        }
        connections.watch(channel) { task.cancel() }
        defer { connections.unwatch(channel) }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    // MARK: cooling

    /// Takes a resource out of routing until `until`, and records why (status and headers as evidence).
    func coolDown(_ resource: RoutableResource, until: Int64, status: Int?, evidence: [(String, String)], cause: String) {
        guard engine.cool(resourceId: resource.id, until: until) else { return }
        metrics.cooled()
        let id = resource.id
        let tenantId = resource.resource.tenantId
        let now = state.clock.nowMs()
        let state = self.state
        Task {
            do {
                try await state.mutate { conn in
                    guard var r = try conn.resource(tenantId: tenantId, id: id), r.state == .active || r.state == .degraded || r.state == .cooling else {
                        return
                    }
                    let before = r.state
                    r.state = .cooling
                    r.coolingUntil = max(until, r.coolingUntil ?? 0)
                    r.stateReason = "cooling until \(Timestamp.format(r.coolingUntil!)) after \(cause)"
                    r.stateChangedAt = now
                    r.updatedAt = now
                    try conn.updateResource(r)
                    try conn.appendAudit(
                        AuditEntry(
                            tenantId: tenantId, at: now, actor: "system:router", action: "resource.state", targetType: "resource", targetId: id,
                            summary: [
                                "from": .string(before.rawValue), "to": "cooling", "until": .string(Timestamp.format(r.coolingUntil!)),
                                "cause": .string(cause), "status": .int(status.map { Int64($0) }),
                                "headers": .object(evidence.map { ($0.0, .string($0.1)) }),
                            ]))
                }
            } catch {
                state.logger.error("could not record a cooldown", metadata: ["resource": "\(id)", "error": "\(error)"])
            }
        }
    }

    /// Takes `model` off a resource that answered 404 for it, for `modelCooldownMs`, and records why.
    /// The resource keeps serving its other models.
    func coolModel(_ resource: RoutableResource, model: String, evidence body: [UInt8]) {
        let now = state.clock.nowMs()
        let until = now + Self.modelCooldownMs
        guard engine.coolModel(resourceId: resource.id, model: model, until: until, forgetBefore: now) else { return }
        let entry = AuditEntry(
            tenantId: resource.resource.tenantId, at: now, actor: "system:router", action: "resource.model_cooled", targetType: "resource",
            targetId: resource.id,
            summary: [
                "model": .string(model), "until": .string(Timestamp.format(until)), "status": 404,
                "upstream_error": .string(resource.redactor.redact(String(decoding: body.prefix(500), as: UTF8.self))),
            ])
        let state = self.state
        Task {
            do { try await state.db.write { conn in try conn.appendAudit(entry) } } catch {
                state.logger.error("could not record a model cooldown", metadata: ["error": "\(error)"])
            }
        }
    }

    static let modelCooldownMs: Int64 = 600_000

    // MARK: approvals and grants

    struct Grants {
        var models: Set<String> = []
        var budget: [String: Int64] = [:]
    }

    /// Models and budget increases granted by approvals in force, for the projects of a chain.
    func grants(project chain: [Project], now: Int64) -> Grants {
        var g = Grants()
        let catalog = state.catalog
        for p in chain {
            for a in catalog.approvals[p.id] ?? [] where a.isActive(at: now) {
                if let m = a.grantModel { g.models.insert(m) }
                if let micros = a.grantMicros { g.budget[p.id, default: 0] += micros }
            }
        }
        return g
    }

    /// Opens an approval request for a project, or finds the one already open for the same project
    /// and key, and returns its id. The check and the insert are one write transaction, so concurrent
    /// over-budget requests never open two.
    func openApproval(caller: Caller, projectId: String, model: String, detail: String) async throws -> String {
        let approval = Approval(
            id: Identifier.make("apr"), tenantId: caller.tenant.id, projectId: projectId, keyId: caller.key.id,
            requestedBy: "\(caller.key.kind == .seat ? "seat" : "key"):\(caller.key.id)", model: model, detail: detail,
            requestedAt: state.clock.nowMs())
        let (id, created) = try await state.db.write { conn in
            let result = try conn.openOrReuseApproval(approval)
            if result.created {
                try conn.appendAudit(
                    AuditEntry(
                        tenantId: approval.tenantId, at: approval.requestedAt, actor: approval.requestedBy, action: "approval.open",
                        targetType: "approval", targetId: approval.id, summary: ["project_id": .string(projectId), "detail": .string(detail)]))
            }
            return result
        }
        if created {
            do { try await alerts.approvalOpened(approval) } catch {
                state.logger.error("could not queue the approval event", metadata: ["error": "\(error)"])
            }
        }
        return id
    }

    // MARK: access log

    /// One `info` line per data-plane request once its row is built: who, what, where it went and how
    /// it ended. No prompt, response, key or credential; the ledger stays the record of account.
    func logRequest(_ e: LedgerEntry) {
        let logger = state.logger
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

    // MARK: identities and headers

    /// End-user identifiers are stored as keyed digests when the tenant asks (the default).
    func userDigest(_ user: String, tenant: Tenant) -> String {
        guard tenant.settings.hashEndUsers else { return String(user.prefix(128)) }
        return "u_" + String(SecretDigest.keyed("\(tenant.id)\u{0}\(user)", key: state.userDigestKey.key).prefix(32))
    }

    func addBudgetHeaders(_ headers: inout HTTPFields, exchange: Exchange) {
        guard let a = exchange.admission else { return }
        if let remaining = a.budgetRemaining {
            headers[HTTPField.Name("x-quotaflow-budget-remaining-micros")!] = String(max(0, remaining))
        }
        let now = state.clock.nowMs()
        let caller = exchange.caller
        var best: (Int64, Int64)?
        if let rpm = caller.key.rpm ?? caller.project.rateLimits.rpmPerKey {
            best = (engine.remaining(limiter: .key(caller.key.id), limit: rpm, now: now), rpm)
        }
        if let rpm = caller.project.rateLimits.rpm {
            let left = engine.remaining(limiter: .project(caller.project.id), limit: rpm, now: now)
            if best == nil || left < best!.0 { best = (left, rpm) }
        }
        if let (left, limit) = best {
            headers[HTTPField.Name("x-quotaflow-ratelimit-limit-requests")!] = String(limit)
            headers[HTTPField.Name("x-quotaflow-ratelimit-remaining-requests")!] = String(left)
        }
    }

    // MARK: counters from the ledger

    /// Recomputes every budget counter from the ledger, at a point where no batch is half-applied.
    func recomputeCounters() async throws {
        let catalog = state.catalog
        let now = state.clock.nowMs()
        let engine = self.engine
        try await ledger.barrier { conn in
            engine.load(try conn.recomputeCounters(catalog: catalog, now: now, known: engine.allCounters()))
        }
    }

    func recomputeCountersSync() throws {
        let catalog = state.catalog
        let now = state.clock.nowMs()
        let known = engine.allCounters()
        engine.load(try state.db.writeSync { conn in try conn.recomputeCounters(catalog: catalog, now: now, known: known) })
    }

    /// Budget periods, caps with rollover, or the project tree changed: counters are recomputed.
    func catalogChanged(old: Catalog, new: Catalog) {
        var changed = false
        for (id, p) in new.projects {
            let o = old.projects[id]
            if o?.parentId != p.parentId || o?.budget.period != p.budget.period || o?.budget.rolloverPercent != p.budget.rolloverPercent
                || (p.budget.rolloverPercent > 0 && o?.budget.monthlyCapMicros != p.budget.monthlyCapMicros)
            {
                changed = true
                break
            }
        }
        for (id, t) in new.tenants where old.tenants[id]?.settings.period != t.settings.period { changed = true }
        if changed {
            Task { try? await self.recomputeCounters() }
        }
    }
}

/// A service made of a closure.
struct ClosureService: Service, CustomStringConvertible {
    let name: String
    let body: @Sendable () async throws -> Void
    init(name: String, _ body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.body = body
    }
    func run() async throws { try await body() }
    var description: String { name }
}
