import HashTreeCollections

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
    /// Where the resource stands in its tenant's list: the order it was added in.
    public let position: Int64

    public init(resource: Resource, credential: String, baseURL: String, price: TokenPrice?, egressChecked: Bool = true, position: Int64 = 0) {
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
        self.position = position
    }
}

/// An immutable snapshot of everything the data plane reads.
///
/// Requests read the current snapshot without touching the database. An admin change does not
/// rebuild it: a `CatalogDraft` replaces the changed objects in persistent hash tries (structure
/// shared with the previous snapshot), so a change costs the same at any catalog size, and the new
/// snapshot is published before the admin call returns, so a revoke takes effect at once.
public final class Catalog: Sendable {
    /// The maps, as the draft that made them left them.
    let maps: CatalogDraft

    public var tenants: TreeDictionary<String, Tenant> { maps.tenants }
    public var projects: TreeDictionary<String, Project> { maps.projects }
    /// Live data-plane keys and seats by digest (a rotated seat's previous key too, until it lapses).
    public var keys: TreeDictionary<String, DataPlaneKey> { maps.keys }
    /// Digests of revoked keys, so they are answered `key_revoked` rather than "unknown".
    public var revoked: TreeDictionary<String, String> { maps.revoked }
    /// Routable resources of each tenant, in the order they were added.
    public var resourcesByTenant: TreeDictionary<String, [RoutableResource]> { maps.resourcesByTenant }
    public var pricing: TreeDictionary<String, PricingTable> { maps.pricing }
    public var offers: TreeDictionary<String, OverflowOffer> { maps.offers }
    /// Open approval requests and grants in force, by project.
    public var approvals: TreeDictionary<String, [Approval]> { maps.approvals }
    /// Data-plane keys and seats by id (the current key of each).
    public var keysById: TreeDictionary<String, DataPlaneKey> { maps.keysById }
    public var resourcesById: TreeDictionary<String, RoutableResource> { maps.resourcesById }
    /// Routable resources by pool and what they serve: selection walks only the lanes a request fits.
    public var lanesByPool: TreeDictionary<String, [RoutingLane]> { maps.lanesByPool }
    /// Project and key ids of each tenant, so a tenant's report reads its own objects only.
    public var projectIdsByTenant: TreeDictionary<String, TreeSet<String>> { maps.projectIdsByTenant }
    public var keyIdsByTenant: TreeDictionary<String, TreeSet<String>> { maps.keyIdsByTenant }

    init(_ d: CatalogDraft) { maps = d }

    /// A snapshot from plain dictionaries (tests and tools); the server builds its own through drafts.
    public convenience init(
        tenants: [String: Tenant] = [:], projects: [String: Project] = [:], keys: [String: DataPlaneKey] = [:],
        revoked: [String: String] = [:], resourcesByTenant: [String: [RoutableResource]] = [:], pricing: [String: PricingTable] = [:],
        offers: [String: OverflowOffer] = [:], approvals: [String: [Approval]] = [:]
    ) {
        var d = CatalogDraft()
        for t in tenants.values { d.setTenant(t) }
        for p in projects.values { d.setProject(p, id: p.id) }
        var byId: [String: [(String, DataPlaneKey?)]] = [:]
        for (digest, k) in keys { byId[k.id, default: []].append((digest, k)) }
        for (digest, id) in revoked { byId[id, default: []].append((digest, nil)) }
        for (id, entries) in byId { d.setKey(id: id, tenantId: entries.compactMap { $0.1?.tenantId }.first ?? "", digests: entries) }
        for list in resourcesByTenant.values { for r in list { d.setResource(r, id: r.id) } }
        for (id, table) in pricing { d.setPricing(table, tenantId: id) }
        for (id, o) in offers { d.setOffer(o, credential: "", id: id) }
        for (id, list) in approvals { d.setApprovals(list, projectId: id) }
        self.init(d)
    }

    public static let empty = Catalog()

    /// A draft to change this snapshot; `publish()` makes the next one. This one is untouched.
    public func draft() -> CatalogDraft {
        var d = maps
        d.forgetChanges()
        return d
    }

    /// The resources this snapshot changed from the one it was drafted from.
    public var changedResources: Set<String> { maps.changedResources }

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

    /// The tenant's projects (its own index: the cost does not grow with other tenants).
    public func projects(ofTenant tenantId: String) -> [Project] {
        (projectIdsByTenant[tenantId] ?? []).compactMap { projects[$0] }
    }

    /// The tenant's live keys and seats, by id.
    public func keys(ofTenant tenantId: String) -> [DataPlaneKey] {
        (keyIdsByTenant[tenantId] ?? []).compactMap { keysById[$0] }
    }

    /// The decrypted credential of an overflow offer.
    public func offerCredential(_ id: String) -> String? { maps.offerCredentials[id] }
}

/// A catalog being changed: the same persistent maps, replaced object by object. Each setter costs
/// about log(n) in its map (plus, for a resource, the size of its tenant's list), never the catalog.
public struct CatalogDraft: Sendable {
    public private(set) var tenants: TreeDictionary<String, Tenant> = [:]
    public private(set) var projects: TreeDictionary<String, Project> = [:]
    public private(set) var keys: TreeDictionary<String, DataPlaneKey> = [:]
    public private(set) var revoked: TreeDictionary<String, String> = [:]
    public private(set) var resourcesByTenant: TreeDictionary<String, [RoutableResource]> = [:]
    public private(set) var pricing: TreeDictionary<String, PricingTable> = [:]
    public private(set) var offers: TreeDictionary<String, OverflowOffer> = [:]
    public private(set) var approvals: TreeDictionary<String, [Approval]> = [:]
    public private(set) var keysById: TreeDictionary<String, DataPlaneKey> = [:]
    public private(set) var resourcesById: TreeDictionary<String, RoutableResource> = [:]
    public private(set) var projectIdsByTenant: TreeDictionary<String, TreeSet<String>> = [:]
    public private(set) var keyIdsByTenant: TreeDictionary<String, TreeSet<String>> = [:]
    /// The digests each key or seat id occupies (live or revoked), so a change replaces them all.
    var digestsById: TreeDictionary<String, [String]> = [:]
    /// Decrypted offer credentials, for overflow resources that draw on them.
    var offerCredentials: TreeDictionary<String, String> = [:]
    /// Routable resources by pool and what they serve, for selection (see `RoutingLane`).
    public internal(set) var lanesByPool: TreeDictionary<String, [RoutingLane]> = [:]
    /// Resources set since this draft began (a published catalog's are those it changed from the
    /// one it was drafted from), so the selection index is told about every one.
    public private(set) var changedResources: Set<String> = []

    public init() {}

    public func publish() -> Catalog { Catalog(self) }

    mutating func forgetChanges() { changedResources = [] }

    public func offerCredential(_ id: String) -> String? { offerCredentials[id] }

    public mutating func setTenant(_ t: Tenant) { tenants[t.id] = t }

    public mutating func removeTenant(_ id: String) { tenants[id] = nil }

    /// Puts (or, with `nil`, removes) a project.
    public mutating func setProject(_ p: Project?, id: String) {
        if let old = projects[id], old.tenantId != p?.tenantId { projectIdsByTenant[old.tenantId]?.remove(id) }
        projects[id] = p
        if let p { projectIdsByTenant[p.tenantId, default: []].insert(id) }
    }

    /// Replaces every digest a key or seat occupies: `nil` marks a digest revoked. An empty list
    /// removes the key.
    public mutating func setKey(id: String, tenantId: String, digests: [(digest: String, key: DataPlaneKey?)]) {
        for digest in digestsById[id] ?? [] {
            keys[digest] = nil
            revoked[digest] = nil
        }
        keysById[id] = nil
        keyIdsByTenant[tenantId]?.remove(id)
        digestsById[id] = digests.isEmpty ? nil : digests.map(\.digest)
        for (digest, key) in digests {
            guard let key else {
                revoked[digest] = id
                continue
            }
            keys[digest] = key
            if key.validUntil == nil {
                keysById[id] = key
                keyIdsByTenant[tenantId, default: []].insert(id)
            }
        }
    }

    /// Puts (or, with `nil`, removes) a routable resource; a tenant's list stays in the order they were added.
    public mutating func setResource(_ r: RoutableResource?, id: String) {
        changedResources.insert(id)
        moveInLanes(from: resourcesById[id], to: r)
        if let old = resourcesById[id] {
            let tenantId = old.resource.tenantId
            var list = resourcesByTenant[tenantId] ?? []
            list.removeAll { $0.id == id }
            resourcesByTenant[tenantId] = list.isEmpty ? nil : list
        }
        resourcesById[id] = r
        guard let r else { return }
        var list = resourcesByTenant[r.resource.tenantId] ?? []
        let at = list.firstIndex { ($0.position, $0.id) > (r.position, r.id) } ?? list.endIndex
        list.insert(r, at: at)
        resourcesByTenant[r.resource.tenantId] = list
    }

    public mutating func setPricing(_ table: PricingTable?, tenantId: String) { pricing[tenantId] = table }

    public mutating func setOffer(_ offer: OverflowOffer?, credential: String?, id: String) {
        offers[id] = offer
        offerCredentials[id] = offer == nil ? nil : credential
    }

    public mutating func setApprovals(_ list: [Approval], projectId: String) { approvals[projectId] = list.isEmpty ? nil : list }
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
