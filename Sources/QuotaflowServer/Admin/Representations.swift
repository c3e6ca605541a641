import QuotaflowCore

/// The API's JSON form of each object. Secrets never appear here: credentials show a hint and keys a prefix.
enum Rep {
    static func time(_ ms: Int64?) -> JSONValue { ms.map { .string(Timestamp.format($0)) } ?? .null }

    static func tenant(_ t: Tenant) -> JSONValue {
        [
            "id": .string(t.id), "name": .string(t.name), "status": .string(t.status.rawValue), "settings": t.settings.json(),
            "created_at": time(t.createdAt), "updated_at": time(t.updatedAt),
        ]
    }

    static func pool(_ p: Pool, resourceCount: Int? = nil) -> JSONValue {
        .compact([
            ("id", .string(p.id)), ("tenant_id", .string(p.tenantId)), ("name", .string(p.name)), ("description", .string(p.description)),
            ("resource_count", resourceCount.map { .int(Int64($0)) }), ("created_at", time(p.createdAt)), ("updated_at", time(p.updatedAt)),
        ])
    }

    static func resource(_ r: Resource) -> JSONValue {
        .compact([
            ("id", .string(r.id)), ("tenant_id", .string(r.tenantId)), ("pool_id", .string(r.poolId)), ("name", .string(r.name)),
            ("kind", .string(r.kind.rawValue)), ("provider", .string(r.provider.rawValue)), ("wire_format", .string(r.wireFormat.rawValue)),
            ("families", .strings(r.families.map(\.rawValue))),
            ("base_url", .string(r.baseURL)), ("credential_hint", .string(r.credentialHint)), ("models", .strings(r.models)),
            ("owner", .string(r.owner)), ("attestation", r.attestation?.json() ?? .null), ("allowed_use", .string(r.allowedUse)),
            ("cost_basis", r.costBasis.json()), ("limits", r.limits.json()), ("lease_mode", .string(r.leaseMode.rawValue)),
            ("plan", r.plan.json()), ("oauth", r.oauth?.json() ?? .null), ("cloud", r.cloud?.json()),
            ("probe", r.probe.json()), ("state", .string(r.state.rawValue)), ("state_reason", .string(r.stateReason)),
            ("state_changed_at", time(r.stateChangedAt)), ("cooling_until", time(r.coolingUntil)), ("manual_hold", .bool(r.manualHold)),
            ("offer_id", .string(r.offerId)), ("credit_cap_micros", .int(r.creditCapMicros)), ("created_at", time(r.createdAt)),
            ("updated_at", time(r.updatedAt)),
        ])
    }

    static func project(_ p: Project) -> JSONValue {
        [
            "id": .string(p.id), "tenant_id": .string(p.tenantId), "name": .string(p.name), "parent_id": .string(p.parentId),
            "pool_ids": .strings(p.poolIds), "allowed_models": .strings(p.allowedModels), "status": .string(p.status.rawValue),
            "overflow_allowed": .bool(p.overflowAllowed), "overflow_cap_micros": .int(p.overflowCapMicros), "budget": p.budget.json(),
            "request_limits": p.requestLimits.json(), "rate_limits": p.rateLimits.json(),
            "enforcement": p.enforcement.map { .string($0.rawValue) } ?? .null,
            "attributes": .object(p.attributes.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }),
            "created_at": time(p.createdAt), "updated_at": time(p.updatedAt),
        ]
    }

    static func projectKey(_ k: ProjectKey, secret: String? = nil) -> JSONValue {
        .compact([
            ("id", .string(k.id)), ("tenant_id", .string(k.tenantId)), ("project_id", .string(k.projectId)), ("name", .string(k.name)),
            ("prefix", .string(k.prefix)), ("key", secret.map(JSONValue.string)), ("state", .string(k.revokedAt == nil ? "active" : "revoked")),
            ("allowed_models", .strings(k.allowedModels)), ("budget_cap_micros", .int(k.budgetCapMicros)), ("rpm", .int(k.rpm)),
            ("created_by", .string(k.createdBy)), ("created_at", time(k.createdAt)), ("revoked_at", time(k.revokedAt)),
        ])
    }

    static func adminKey(_ k: AdminKey, secret: String? = nil) -> JSONValue {
        .compact([
            ("id", .string(k.id)), ("tenant_id", .string(k.tenantId)), ("name", .string(k.name)), ("prefix", .string(k.prefix)),
            ("scope", .string(k.scope.rawValue)), ("key", secret.map(JSONValue.string)),
            ("state", .string(k.revokedAt == nil ? "active" : "revoked")),
            ("created_by", .string(k.createdBy)), ("created_at", time(k.createdAt)), ("revoked_at", time(k.revokedAt)),
        ])
    }

    static func audit(_ e: AuditEntry) -> JSONValue {
        [
            "id": .int(e.id), "tenant_id": .string(e.tenantId), "at": time(e.at), "actor": .string(e.actor), "action": .string(e.action),
            "target_type": .string(e.targetType), "target_id": .string(e.targetId), "summary": e.summary,
        ]
    }

    static func offer(_ o: OverflowOffer) -> JSONValue {
        [
            "id": .string(o.id), "name": .string(o.name), "provider": .string(o.provider.rawValue), "wire_format": .string(o.wireFormat.rawValue),
            "base_url": .string(o.baseURL), "models": .strings(o.models), "price": o.price.json(), "credential_hint": .string(o.credentialHint),
            "active": .bool(o.active), "created_at": time(o.createdAt), "updated_at": time(o.updatedAt),
        ]
    }

    static func price(_ e: PriceEntry) -> JSONValue {
        var members = e.price.json().objectMembers ?? []
        members.insert(("model", .string(e.model)), at: 0)
        return .object(members)
    }

    /// Top-level members that differ between two representations, for audit summaries.
    static func diff(_ before: JSONValue, _ after: JSONValue, ignoring: Set<String> = ["updated_at"]) -> JSONValue {
        let old = before.objectMembers ?? []
        let new = after.objectMembers ?? []
        var changes: [(String, JSONValue)] = []
        for (key, value) in new where !ignoring.contains(key) {
            let previous = old.last(where: { $0.0 == key })?.1 ?? .null
            if previous != value { changes.append((key, ["from": previous, "to": value])) }
        }
        return ["changed": .object(changes)]
    }
}
