/// A data-plane credential after lookup: a project key or a virtual seat. A class, so the hot path
/// passes one reference instead of copying (and retaining) every field.
public final class DataPlaneKey: Sendable {
    public enum Kind: Sendable, Equatable {
        case projectKey
        case seat
    }

    public let kind: Kind
    public let id: String
    public let tenantId: String
    public let projectId: String
    public let name: String
    public let allowedModels: [String]
    public let budgetCapMicros: Int64?
    public let rpm: Int64?
    /// Seats expire; project keys do not.
    public let expiresAt: Int64?
    /// After a seat rotation, the previous key works until this time.
    public let validUntil: Int64?

    public init(
        kind: Kind, id: String, tenantId: String, projectId: String, name: String, allowedModels: [String], budgetCapMicros: Int64?, rpm: Int64?,
        expiresAt: Int64?, validUntil: Int64?
    ) {
        self.kind = kind
        self.id = id
        self.tenantId = tenantId
        self.projectId = projectId
        self.name = name
        self.allowedModels = allowedModels
        self.budgetCapMicros = budgetCapMicros
        self.rpm = rpm
        self.expiresAt = expiresAt
        self.validUntil = validUntil
    }
}

/// A resource ready for routing: its settings, its decrypted credential and its marginal price.
public final class RoutableResource: Sendable {
    public let resource: Resource
    public let credential: String
    public let baseURL: String
    /// The marginal price per token (per-token cost basis, or the overflow offer's metered price).
    public let price: TokenPrice?
    public let id: String
    /// Removes this resource's credential from everything relayed back to clients.
    public let redactor: SecretRedactor
    /// Where calls go, and whether the egress policy applies (tenant-set URLs) or not (the operator's).
    public let target: URLTarget?
    public let egressChecked: Bool

    public init(resource: Resource, credential: String, baseURL: String, price: TokenPrice?, egressChecked: Bool = true) {
        self.resource = resource
        self.credential = credential
        self.baseURL = baseURL
        self.price = price
        self.id = resource.id
        // An AWS key pair never travels whole: its secret and session token are redacted on their own.
        let parts = resource.provider == .bedrock ? credential.split(separator: ":").dropFirst().map(String.init) : []
        self.redactor = SecretRedactor(secrets: [credential] + parts)
        self.target = URLTarget(baseURL)
        self.egressChecked = egressChecked
    }
}

/// An immutable snapshot of everything the data plane reads, rebuilt after each admin change.
///
/// Requests read the current snapshot without touching the database; changes publish a new one
/// before the admin call returns, so a revoke takes effect at once.
public final class Catalog: Sendable {
    public let tenants: [String: Tenant]
    public let projects: [String: Project]
    public let keys: [String: DataPlaneKey]
    /// Digests of revoked keys, so they are answered `key_revoked` rather than "unknown".
    public let revoked: [String: String]
    public let resourcesByTenant: [String: [RoutableResource]]
    public let pricing: [String: PricingTable]
    public let offers: [String: OverflowOffer]
    /// Open approval requests and grants in force, by project.
    public let approvals: [String: [Approval]]
    /// Data-plane keys and seats by id (the current key of each).
    public let keysById: [String: DataPlaneKey]
    public let resourcesById: [String: RoutableResource]

    public init(
        tenants: [String: Tenant] = [:], projects: [String: Project] = [:], keys: [String: DataPlaneKey] = [:],
        revoked: [String: String] = [:], resourcesByTenant: [String: [RoutableResource]] = [:], pricing: [String: PricingTable] = [:],
        offers: [String: OverflowOffer] = [:], approvals: [String: [Approval]] = [:]
    ) {
        self.tenants = tenants
        self.projects = projects
        self.keys = keys
        self.revoked = revoked
        self.resourcesByTenant = resourcesByTenant
        self.pricing = pricing
        self.offers = offers
        self.approvals = approvals
        var byId: [String: DataPlaneKey] = [:]
        for k in keys.values where k.validUntil == nil { byId[k.id] = k }
        self.keysById = byId
        var resources: [String: RoutableResource] = [:]
        for list in resourcesByTenant.values { for r in list { resources[r.id] = r } }
        self.resourcesById = resources
    }

    public static let empty = Catalog()

    /// The project and its ancestors, innermost first. Stops at cycles.
    public func projectChain(_ projectId: String) -> [Project] {
        var chain: [Project] = []
        var next: String? = projectId
        while let id = next, let p = projects[id], !chain.contains(where: { $0.id == id }) {
            chain.append(p)
            next = p.parentId
        }
        return chain
    }

    public func resource(_ id: String, tenantId: String) -> RoutableResource? {
        guard let r = resourcesById[id], r.resource.tenantId == tenantId else { return nil }
        return r
    }
}

/// Models and budget increases granted by approvals in force.
public struct Grants: Sendable, Equatable {
    /// Models (or patterns) the projects may use although their lists do not name them.
    public var models: Set<String> = []
    /// Temporary budget increases by project, in micro-USD.
    public var budget: [String: Int64] = [:]

    public init(models: Set<String> = [], budget: [String: Int64] = [:]) {
        self.models = models
        self.budget = budget
    }
}

extension Catalog {
    /// What approvals in force at `now` grant the projects of a chain.
    public func grants(for chain: [Project], now: Int64) -> Grants {
        var g = Grants()
        for p in chain {
            for a in approvals[p.id] ?? [] where a.isActive(at: now) {
                if let m = a.grantModel { g.models.insert(m) }
                if let micros = a.grantMicros { g.budget[p.id, default: 0] += micros }
            }
        }
        return g
    }
}
