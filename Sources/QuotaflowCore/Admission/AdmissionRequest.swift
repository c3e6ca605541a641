/// Everything admission needs to know about one request, fixed before it runs. A class, so the
/// hot path passes one reference.
public final class AdmissionRequest: Sendable {
    public let catalog: Catalog
    public let tenant: Tenant
    /// The key's project and its ancestors, innermost first.
    public let chain: [Project]
    public let key: DataPlaneKey
    /// Empty for calls on a stored response, which name no model.
    public let model: String
    /// The API family a resource must serve.
    public let family: ApiFamily
    /// Only this resource may take the request (it holds the stored response the request continues).
    public let pinnedResourceId: String?
    /// Who holds an exclusive seat lease: the key, or a user within the key.
    public let holder: String
    /// What multiplies the request's cost; the worst case and the tokens held come from it.
    public let shape: CostShape
    public let listPrice: TokenPrice
    /// `false` in audit enforcement: limits are recorded, not enforced.
    public let enforce: Bool
    /// Set when an overage policy admitted the request, with the project whose budget it stands in for.
    public let overage: (kind: OverageKind, projectId: String)?
    /// Budget increases granted by approvals in force, by project.
    public let grants: [String: Int64]
    public let leaseIdleMs: Int64
    /// The conversation the request belongs to (Codex's session, Claude Code's, or `x-quotaflow-session`).
    public let session: String?
    /// The holder's client sent its own subscription token: only passthrough resources may take it,
    /// and passthrough resources take nothing else.
    public let passthrough: Bool
    public let windowPolicy: WindowPolicy
    /// The `anthropic-beta` features asked for: a cloud resource that lacks one is not eligible.
    public let betas: [String]
    public let now: Int64
    /// In a fleet, exclusive seats are leased on shared rows: this replica's view of who holds
    /// one orders the choice but does not refuse it (the fleet's lease does).
    public let leasesShared: Bool

    public init(
        catalog: Catalog, tenant: Tenant, chain: [Project], key: DataPlaneKey, model: String, family: ApiFamily, pinnedResourceId: String? = nil,
        holder: String,
        shape: CostShape, listPrice: TokenPrice, enforce: Bool, overage: (kind: OverageKind, projectId: String)?, grants: [String: Int64],
        leaseIdleMs: Int64, session: String? = nil, passthrough: Bool = false, windowPolicy: WindowPolicy = .init(), betas: [String] = [],
        now: Int64, leasesShared: Bool = false
    ) {
        self.leasesShared = leasesShared
        self.catalog = catalog
        self.tenant = tenant
        self.chain = chain
        self.key = key
        self.model = model
        self.family = family
        self.pinnedResourceId = pinnedResourceId
        self.holder = holder
        self.shape = shape
        self.listPrice = listPrice
        self.enforce = enforce
        self.overage = overage
        self.grants = grants
        self.leaseIdleMs = leaseIdleMs
        self.session = session
        self.passthrough = passthrough
        self.windowPolicy = windowPolicy
        self.betas = betas
        self.now = now
    }

    public var project: Project { chain[0] }

    /// Whether `resource` could take this request, leaving out load, leases and caps.
    public func fits(_ resource: RoutableResource) -> Bool {
        let res = resource.resource
        return project.poolIds.contains(res.poolId) && (pinnedResourceId == nil || pinnedResourceId == resource.id) && isServed(by: res)
    }

    /// Whether `res` is of the tenant, of the request's mode (passthrough or not), and serves its
    /// API family, betas and model: what a routing lane's members share, so a lane is checked once.
    func isServed(by res: Resource) -> Bool {
        res.tenantId == tenant.id && (res.leaseMode == .passthrough) == passthrough && res.serves(family: family) && res.accepts(betas: betas)
            && (model.isEmpty || res.serves(model: model))
    }

    /// Whose windows on `resource` this request reads: the holder's own for passthrough, else the credential's.
    public func windowHolder(_ resource: Resource) -> String { resource.leaseMode == .passthrough ? key.id : "" }

    var sessionKey: String? { session.map { SessionBook.key(tenantId: tenant.id, keyId: key.id, session: $0) } }

    /// The charging facts before a resource is chosen.
    var facts: Charging.Facts {
        Charging.Facts(
            tenantId: tenant.id, chain: chain.map(\.id), keyId: key.kind == .projectKey ? key.id : nil, seatId: key.kind == .seat ? key.id : nil,
            overage: overage?.kind, overageProjectId: overage?.projectId)
    }
}
