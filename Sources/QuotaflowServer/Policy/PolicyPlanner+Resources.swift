import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

extension PolicyPlanner {
    // MARK: pools and resources

    /// Pools after the apply, by name (new ones get their ids here).
    mutating func planPools(_ value: JSONValue?) async throws -> [Pool] {
        var pools = current.pools
        var byName: [String: Resource] = [:]
        for r in current.resources { byName[r.name] = r }
        var named: Set<String> = []
        let entries = try validating { try Self.list(value, "pools") }
        // Pools first, so a resource may sit in a pool the same file creates.
        var listed: [(String, ObjectReader)] = []
        for v in entries {
            let (name, r) = try validating { try Self.object(v, "pools", key: "name") }
            let path = "pools.\(name)"
            let pool = try validating { () throws -> ObjectReader in
                let pool = try ObjectReader(v, path: path)
                try pool.rejectUnknown(["name", "description", "resources"])
                return pool
            }
            _ = r
            listed.append((name, pool))
            if current.pool(named: name) == nil {
                let p = Pool(
                    id: Identifier.make("pool"), tenantId: tenantId, name: name, description: pool["description"]?.stringValue ?? "", createdAt: now,
                    updatedAt: now)
                pools.append(p)
                changes.append(PolicyChange(action: .create, kind: "pool", name: name, path: path))
                ops.append { conn in try conn.insertPool(p) }
            }
        }
        for (poolName, pool) in listed {
            guard let poolId = pools.first(where: { $0.name == poolName })?.id else { continue }
            for v in try validating({ try Self.list(pool["resources"], "pools.\(poolName).resources") }) {
                let (name, r) = try validating { try Self.object(v, "pools.\(poolName).resources", key: "name") }
                let path = "pools.\(poolName).resources.\(name)"
                guard named.insert(name).inserted else { throw ProblemError.invalid(path, "names a resource that the file already lists") }
                var members = r.members.filter { $0.0 != "pool" }
                members.append(("pool_id", .string(poolId)))
                if let old = byName[name] {
                    try await planResourceUpdate(old, ObjectReader(members: members, path: ""), path: path, pools: pools)
                } else {
                    try await planResourceCreate(ObjectReader(members: members, path: ""), path: path, pools: pools)
                }
            }
        }
        if prune {
            for old in current.resources where !named.contains(old.name) {
                changes.append(
                    PolicyChange(
                        action: .revoke, kind: "resource", name: old.name, path: "pools.\(current.poolName(old.poolId)).resources.\(old.name)"))
                var revoked = old
                revoked.state = .revoked
                revoked.stateReason = "revoked by a policy prune (\(who.actor))"
                revoked.stateChangedAt = now
                revoked.updatedAt = now
                ops.append { [revoked] conn in try conn.updateResource(revoked) }
            }
        }
        return pools
    }

    /// Runs a resource check, naming the field inside the document.
    static func prefixed<T>(_ path: String, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as ProblemError where e.field != nil {
            throw ProblemError.invalid("\(path).\(e.field!)", String(e.detail.drop(while: { $0 != ":" }).dropFirst(2)))
        } catch let e as FieldError {
            throw ProblemError.invalid("\(path).\(e.field)", e.message)
        }
    }

    mutating func planResourceCreate(_ body: ObjectReader, path: String, pools: [Pool]) async throws {
        let (resources, tenantId, who) = (self.resources, self.tenantId, self.who)
        let new = try await Self.prefixed(path) { try await resources.prepare(body, tenantId: tenantId, pools: pools, who: who) }
        var fields = PolicyChange.created(PolicyState.resourceJSON(new.resource))
        if new.digest != nil { fields.append(.init(name: "credential", old: nil, new: nil, secret: true)) }
        changes.append(PolicyChange(action: .create, kind: "resource", name: new.resource.name, path: path, fields: fields))
        ops.append { conn in try new.insert(conn) }
    }

    mutating func planResourceUpdate(_ old: Resource, _ body: ObjectReader, path: String, pools: [Pool]) async throws {
        let resources = self.resources
        if let kind = body["kind"]?.stringValue, kind != old.kind.rawValue {
            throw ProblemError.invalid("\(path).kind", "cannot change from \(old.kind.rawValue); give the new resource another name")
        }
        let settings = ObjectReader(members: body.members.filter { !["kind", "credential", "offer_id", "oauth"].contains($0.0) }, path: "")
        let offer = old.offerId.flatMap { resources.env.catalog.current.offers[$0] }
        var updated = old
        try await Self.prefixed(path) {
            let merged = try ObjectReader(JSONMergePatch.apply(.object(settings.members), to: ResourcesController.writableJSON(old)))
            try merged.rejectUnknown(ResourcesController.writable)
            try resources.read(merged, into: &updated, tenantId: old.tenantId, pools: pools, offer: offer)
            if updated.leaseMode != old.leaseMode || updated.plan != old.plan || updated.attestation != old.attestation {
                try ResourcesController.checkTerms(updated)
            }
        }
        var fields = PolicyChange.diff(PolicyState.resourceJSON(old), PolicyState.resourceJSON(updated))
        var credential: (ciphertext: [UInt8], hint: String, digest: String)?
        if let secret = body["credential"]?.stringValue {
            let digest = cipher.digest(secret)
            if digest != current.digests[old.id] {
                guard old.oauth == nil, old.kind != .overflow, old.leaseMode != .passthrough else {
                    throw ProblemError.invalid(
                        "\(path).credential", "this resource takes no credential here; rotate its secrets with POST .../rotate-credential")
                }
                try await Self.prefixed(path) { try validating { try ResourcesController.checkCredential(secret, provider: old.provider) } }
                credential = (try cipher.seal(secret, context: "resource:\(old.id)"), ResourcesController.hint((secret, old.provider)), digest)
                fields.append(.init(name: "credential", old: nil, new: nil, secret: true))
            }
        }
        if fields.isEmpty { return }
        let upstreamChanged =
            updated.baseURL != old.baseURL || updated.provider != old.provider || updated.wireFormat != old.wireFormat
            || updated.families != old.families
        if upstreamChanged {
            updated.egressExempt = who.isOperator
            if !who.isOperator { try await Self.prefixed(path) { try await resources.checkEgress(updated) } }
        }
        let restart = (upstreamChanged || credential != nil) && !updated.manualHold
        updated.updatedAt = now
        if restart {
            updated.state = .pending
            updated.stateReason = "changed by a policy; waiting for the health verifier"
            updated.stateChangedAt = now
            updated.coolingUntil = nil
        }
        changes.append(PolicyChange(action: .update, kind: "resource", name: old.name, path: path, fields: fields))
        let now = now
        ops.append { [updated, credential] conn in
            try conn.updateResource(updated)
            if let credential {
                try conn.setResourceCredential(
                    tenantId: updated.tenantId, id: updated.id, ciphertext: credential.ciphertext, hint: credential.hint, digest: credential.digest,
                    at: now)
            }
            if restart { try conn.restartVerification(id: updated.id) }
        }
    }
}
