import Logging
import QuotaflowCore
import QuotaflowStore

/// Reads the routing catalog from the database and decrypts credentials into memory.
enum CatalogLoader {
    static func load(_ conn: SQLiteConnection, cipher: CredentialCipher, logger: Logger, now: Int64) throws -> Catalog {
        var tenants: [String: Tenant] = [:]
        for t in try conn.allTenants() { tenants[t.id] = t }
        var projects: [String: Project] = [:]
        for p in try conn.allProjects() { projects[p.id] = p }
        var keys: [String: DataPlaneKey] = [:]
        for (k, digest) in try conn.allLiveProjectKeys() {
            keys[digest] = DataPlaneKey(
                kind: .projectKey, id: k.id, tenantId: k.tenantId, projectId: k.projectId, name: k.name, allowedModels: k.allowedModels,
                budgetCapMicros: k.budgetCapMicros, rpm: k.rpm, expiresAt: nil, validUntil: nil)
        }
        var revoked = try conn.revokedKeyDigests()
        for (seat, digest, previous) in try conn.allSeatDigests() {
            let key = DataPlaneKey(
                kind: .seat, id: seat.id, tenantId: seat.tenantId, projectId: seat.projectId, name: seat.holder,
                allowedModels: seat.allowedModels, budgetCapMicros: seat.budgetCapMicros, rpm: seat.rpm, expiresAt: seat.expiresAt,
                validUntil: nil)
            if seat.revokedAt != nil {
                revoked[digest] = seat.id
                if let previous { revoked[previous] = seat.id }
                continue
            }
            keys[digest] = key
            if let previous, let until = seat.previousValidUntil {
                keys[previous] = DataPlaneKey(
                    kind: .seat, id: seat.id, tenantId: seat.tenantId, projectId: seat.projectId, name: seat.holder,
                    allowedModels: seat.allowedModels, budgetCapMicros: seat.budgetCapMicros, rpm: seat.rpm, expiresAt: seat.expiresAt,
                    validUntil: until)
            }
        }
        var offers: [String: (OverflowOffer, String)] = [:]
        for (offer, ciphertext) in try conn.allOffersWithCiphertext() {
            guard let ciphertext, let credential = try? cipher.open(ciphertext, context: "offer:\(offer.id)") else {
                logger.error("overflow offer credential cannot be decrypted", metadata: ["offer": "\(offer.id)"])
                continue
            }
            offers[offer.id] = (offer, credential)
        }
        var oauthTokens: [String: String] = [:]
        for row in try conn.allOAuth() {
            if let c = row.accessCiphertext, let token = try? cipher.open(c, context: "oauth-access:\(row.resourceId)") {
                oauthTokens[row.resourceId] = token
            }
        }
        var resources: [String: [RoutableResource]] = [:]
        for (resource, ciphertext) in try conn.allResourcesWithCiphertext() {
            var credential = ""
            var baseURL = resource.baseURL
            var price: TokenPrice?
            if resource.kind == .overflow {
                guard let offerId = resource.offerId, let (offer, offerCredential) = offers[offerId], offer.active else { continue }
                credential = offerCredential
                baseURL = offer.baseURL
                price = offer.price
            } else if resource.leaseMode == .passthrough {
                // No credential: each holder's client sends its own.
            } else if resource.oauth != nil {
                // The access token as last refreshed; the OAuth credentials keep it current between catalogs.
                credential = oauthTokens[resource.id] ?? ""
                if case .perToken(let p) = resource.costBasis { price = p }
            } else {
                guard let ciphertext, let plain = try? cipher.open(ciphertext, context: "resource:\(resource.id)") else {
                    logger.error("resource credential cannot be decrypted", metadata: ["resource": "\(resource.id)"])
                    continue
                }
                credential = plain
                if case .perToken(let p) = resource.costBasis { price = p }
            }
            if let fee = tenants[resource.tenantId]?.settings.toolCallPriceMicros, let p = price { price = p.withToolCallFee(fee) }
            resources[resource.tenantId, default: []].append(
                RoutableResource(
                    resource: resource, credential: credential, baseURL: baseURL, price: price,
                    egressChecked: resource.kind != .overflow && !resource.egressExempt))
        }
        var pricing: [String: PricingTable] = [:]
        for (tenantId, entries) in try conn.allPriceEntries() {
            let settings = tenants[tenantId]?.settings
            pricing[tenantId] = PricingTable(
                entries: entries, defaultPrice: settings?.defaultPrice,
                toolCallMicros: settings?.toolCallPriceMicros ?? TokenPrice.defaultToolCallMicros)
        }
        for (id, t) in tenants where pricing[id] == nil {
            pricing[id] = PricingTable(entries: [], defaultPrice: t.settings.defaultPrice, toolCallMicros: t.settings.toolCallPriceMicros)
        }
        var approvals: [String: [Approval]] = [:]
        for a in try conn.liveApprovals(now: now) { approvals[a.projectId, default: []].append(a) }
        return Catalog(
            tenants: tenants, projects: projects, keys: keys, revoked: revoked, resourcesByTenant: resources, pricing: pricing,
            offers: offers.mapValues { $0.0 }, approvals: approvals)
    }
}
