/// One data-plane request in the ledger. Never prompt or response content.
public struct LedgerEntry: Sendable, Equatable {
    public var seq: Int64 = 0
    public var requestId: String
    /// When the request finished (ms); periods and reports use this time.
    public var at: Int64
    public var startedAt: Int64
    public var tenantId: String
    public var projectId: String
    public var keyId: String?
    public var seatId: String?
    public var userDigest: String?
    public var resourceId: String?
    public var poolId: String?
    public var overflow: Bool = false
    public var provider: String?
    public var wireFormat: WireFormat
    public var endpoint: String
    public var modelRequested: String
    public var modelServed: String?
    public var stream: Bool = false
    public var usage: TokenUsage = .init()
    /// The usage at the tenant's list prices: what budgets count.
    public var costMicros: Int64 = 0
    /// The marginal cost on the resource that served it (the overflow charge for overflow).
    public var upstreamCostMicros: Int64 = 0
    public var reservedMicros: Int64 = 0
    public var status: Int
    public var reason: ReasonCode?
    public var flags: [LedgerFlag] = []
    /// Set when an overage policy admitted the request.
    public var overage: OverageKind?
    /// The project whose budget the overage policy came from.
    public var overageProjectId: String?
    public var latencyUs: Int64 = 0
    public var ttfbUs: Int64?
    public var attempts: Int = 0
    /// The id of the response a Responses API request created (follow-ups are pinned by it).
    public var responseId: String?
    /// Why the router chose the resource; and the resource a moved conversation was bound to.
    public var routeReason: RouteReason?
    public var sessionMovedFrom: String?

    public init(
        requestId: String, at: Int64, startedAt: Int64, tenantId: String, projectId: String, wireFormat: WireFormat, endpoint: String,
        modelRequested: String, status: Int
    ) {
        self.requestId = requestId
        self.at = at
        self.startedAt = startedAt
        self.tenantId = tenantId
        self.projectId = projectId
        self.wireFormat = wireFormat
        self.endpoint = endpoint
        self.modelRequested = modelRequested
        self.status = status
    }

    /// The charge against overflow credit.
    public var overflowChargeMicros: Int64 { overflow ? upstreamCostMicros : 0 }
}

/// A counter that budgets and caps are kept in.
public enum BudgetKey: Hashable, Sendable, CustomStringConvertible {
    case tenant(String)
    case project(String)
    case key(String)
    case seat(String)
    /// A resource's monthly spend cap (marginal cost).
    case resource(String)
    /// An overflow resource's monthly credit cap.
    case overflowCredit(String)
    /// A project's cap on overflow use.
    case projectOverflow(String)
    /// A project's cap on fallback-model spend.
    case projectFallback(String)

    public var description: String {
        switch self {
        case .tenant(let id): return "tenant:\(id)"
        case .project(let id): return "project:\(id)"
        case .key(let id): return "key:\(id)"
        case .seat(let id): return "seat:\(id)"
        case .resource(let id): return "resource:\(id)"
        case .overflowCredit(let id): return "overflow_credit:\(id)"
        case .projectOverflow(let id): return "project_overflow:\(id)"
        case .projectFallback(let id): return "project_fallback:\(id)"
        }
    }

    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let id = String(text[text.index(after: colon)...])
        switch text[..<colon] {
        case "tenant": self = .tenant(id)
        case "project": self = .project(id)
        case "key": self = .key(id)
        case "seat": self = .seat(id)
        case "resource": self = .resource(id)
        case "overflow_credit": self = .overflowCredit(id)
        case "project_overflow": self = .projectOverflow(id)
        case "project_fallback": self = .projectFallback(id)
        default: return nil
        }
    }

    /// Which ledger amount a counter of this kind adds up.
    public var countsUpstreamCost: Bool {
        switch self {
        case .resource, .overflowCredit, .projectOverflow: return true
        default: return false
        }
    }
}

/// What was held for one request, to be settled once its ledger row is committed.
public struct Reservation: Sendable, Equatable {
    /// Each counter and the amount held on it.
    public var holds: [(BudgetKey, Int64)]

    public init(holds: [(BudgetKey, Int64)] = []) { self.holds = holds }

    public static func == (a: Reservation, b: Reservation) -> Bool {
        a.holds.count == b.holds.count && zip(a.holds, b.holds).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}

/// How one committed request moves counters: release its holds, add its charges.
public struct Settlement: Sendable {
    public var reservation: Reservation
    public var charges: [(BudgetKey, Int64)]

    public init(reservation: Reservation, charges: [(BudgetKey, Int64)]) {
        self.reservation = reservation
        self.charges = charges
    }
}
