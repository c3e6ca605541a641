import HashTreeCollections
import Logging
import QuotaflowCore
import QuotaflowStore

/// Reads the routing catalog from the database and decrypts credentials into memory: whole at
/// start, and object by object after a change. Both go through the same `put` functions, so a
/// restart rebuilds the state that the changes built.
struct CatalogLoader {
    let conn: StoreConnection
    let cipher: CredentialCipher
    let logger: Logger
    let now: Int64

    /// The whole catalog, at start.
    static func load(_ conn: StoreConnection, cipher: CredentialCipher, logger: Logger, now: Int64) throws -> Catalog {
        let loader = CatalogLoader(conn: conn, cipher: cipher, logger: logger, now: now)
        var d = CatalogDraft()
        for t in try conn.allTenants() { d.setTenant(t) }
        for p in try conn.allProjects() { d.setProject(p, id: p.id) }
        for (k, digest) in try conn.projectKeysWithDigest() { loader.putKey(k, digest: digest, into: &d) }
        for (seat, digest, previous) in try conn.seatsWithDigests() { loader.putSeat(seat, digest: digest, previous: previous, into: &d) }
        for (offer, ciphertext) in try conn.allOffersWithCiphertext() { loader.putOffer(offer, ciphertext: ciphertext, id: offer.id, into: &d) }
        var tokens: [String: [UInt8]] = [:]
        for row in try conn.allOAuth() { tokens[row.resourceId] = row.accessCiphertext }
        for (r, ciphertext, position) in try conn.routableResourceRows() {
            loader.putResource(r, ciphertext: ciphertext, access: tokens[r.id], position: position, into: &d)
        }
        let entries = try conn.allPriceEntries()
        for t in d.tenants.values { loader.putPricing(tenantId: t.id, entries: entries[t.id] ?? [], into: &d) }
        var approvals: [String: [Approval]] = [:]
        for a in try conn.liveApprovals(now: now) { approvals[a.projectId, default: []].append(a) }
        for (projectId, list) in approvals { d.setApprovals(list, projectId: projectId) }
        return d.publish()
    }

    /// Replaces the changed objects in `catalog`, reading each by id (inside the writer's transaction).
    static func apply(
        _ changes: CatalogChanges, to catalog: Catalog, _ conn: StoreConnection, cipher: CredentialCipher, logger: Logger, now: Int64
    )
        throws -> Catalog
    {
        let loader = CatalogLoader(conn: conn, cipher: cipher, logger: logger, now: now)
        var d = catalog.draft()
        var resources = changes.resources
        var pricing = changes.pricing
        for id in changes.tenants {
            if let t = try conn.tenant(id: id) { d.setTenant(t) } else { d.removeTenant(id) }
            // Prices carry the tenant's defaults and tool fee.
            pricing.insert(id)
            resources.formUnion(try conn.resourceIds(tenantId: id))
        }
        for id in changes.projects { d.setProject(try conn.project(id: id), id: id) }
        for id in changes.keys {
            let rows = try conn.projectKeysWithDigest(id: id)
            if rows.isEmpty { d.setKey(id: id, tenantId: catalog.keysById[id]?.tenantId ?? "", digests: []) }
            for (k, digest) in rows { loader.putKey(k, digest: digest, into: &d) }
        }
        for id in changes.seats {
            let rows = try conn.seatsWithDigests(id: id)
            if rows.isEmpty { d.setKey(id: id, tenantId: catalog.keysById[id]?.tenantId ?? "", digests: []) }
            for (seat, digest, previous) in rows { loader.putSeat(seat, digest: digest, previous: previous, into: &d) }
        }
        for id in changes.offers {
            if let (offer, ciphertext) = try conn.offerWithCiphertext(id: id) {
                loader.putOffer(offer, ciphertext: ciphertext, id: id, into: &d)
            } else {
                d.setOffer(nil, credential: nil, id: id)
            }
            resources.formUnion(try conn.resourceIds(offerId: id))
        }
        for id in resources {
            guard let (r, ciphertext, position) = try conn.routableResourceRows(id: id).first else {
                d.setResource(nil, id: id)
                continue
            }
            let access = try conn.oauthRow(resourceId: id)?.accessCiphertext
            loader.putResource(r, ciphertext: ciphertext, access: access, position: position, into: &d)
        }
        for id in pricing where d.tenants[id] != nil { loader.putPricing(tenantId: id, entries: try conn.priceEntries(tenantId: id), into: &d) }
        for id in changes.approvals { d.setApprovals(try conn.liveApprovals(projectId: id, now: now), projectId: id) }
        return d.publish()
    }

    func putKey(_ k: ProjectKey, digest: String, into d: inout CatalogDraft) {
        d.setKey(id: k.id, tenantId: k.tenantId, digests: DataPlaneKey.digests(of: k, digest: digest))
    }

    func putSeat(_ seat: Seat, digest: String, previous: String?, into d: inout CatalogDraft) {
        d.setKey(id: seat.id, tenantId: seat.tenantId, digests: DataPlaneKey.digests(of: seat, digest: digest, previous: previous))
    }

    func putOffer(_ offer: OverflowOffer, ciphertext: [UInt8]?, id: String, into d: inout CatalogDraft) {
        guard let ciphertext, let credential = try? cipher.open(ciphertext, context: "offer:\(offer.id)") else {
            logger.error("overflow offer credential cannot be decrypted", metadata: ["offer": "\(offer.id)"])
            d.setOffer(nil, credential: nil, id: id)
            return
        }
        d.setOffer(offer, credential: credential, id: id)
    }

    /// A resource as routed: its decrypted credential (or its offer's, or its OAuth access token) and
    /// its marginal price with the tenant's tool fee. One that cannot be routed is removed.
    func putResource(_ resource: Resource, ciphertext: [UInt8]?, access: [UInt8]?, position: Int64, into d: inout CatalogDraft) {
        var credential = ""
        var baseURL = resource.baseURL
        var price: TokenPrice?
        if resource.kind == .overflow {
            guard let offerId = resource.offerId, let offer = d.offers[offerId], offer.active, let offerCredential = d.offerCredential(offerId) else {
                return d.setResource(nil, id: resource.id)
            }
            credential = offerCredential
            baseURL = offer.baseURL
            price = offer.price
        } else if resource.leaseMode == .passthrough {
            // No credential: each holder's client sends its own.
        } else if resource.oauth != nil {
            // The access token as last refreshed; the OAuth credentials keep it current between catalogs.
            credential = access.flatMap { try? cipher.open($0, context: "oauth-access:\(resource.id)") } ?? ""
            if case .perToken(let p) = resource.costBasis { price = p }
        } else {
            guard let ciphertext, let plain = try? cipher.open(ciphertext, context: "resource:\(resource.id)") else {
                logger.error("resource credential cannot be decrypted", metadata: ["resource": "\(resource.id)"])
                return d.setResource(nil, id: resource.id)
            }
            credential = plain
            if case .perToken(let p) = resource.costBasis { price = p }
        }
        if let fee = d.tenants[resource.tenantId]?.settings.toolCallPriceMicros, let p = price { price = p.withToolCallFee(fee) }
        d.setResource(
            RoutableResource(
                resource: resource, credential: credential, baseURL: baseURL, price: price,
                egressChecked: resource.kind != .overflow && !resource.egressExempt, position: position), id: resource.id)
    }

    func putPricing(tenantId: String, entries: [PriceEntry], into d: inout CatalogDraft) {
        let settings = d.tenants[tenantId]?.settings ?? TenantSettings()
        d.setPricing(
            PricingTable(entries: entries, defaultPrice: settings.defaultPrice, toolCallMicros: settings.toolCallPriceMicros), tenantId: tenantId)
    }
}
