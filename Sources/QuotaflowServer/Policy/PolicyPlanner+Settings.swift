import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

extension PolicyPlanner {
    // MARK: settings and pricing

    mutating func planSettings(_ value: JSONValue?) throws -> TenantSettings {
        let old = current.tenant.settings
        guard let value, !value.isNull else { return old }
        guard value.objectMembers != nil else { throw FieldError("settings", "must be an object, got \(value.kindName)") }
        let merged = JSONMergePatch.apply(value, to: old.json())
        let desired = try TenantSettings.converter(merged, "settings")
        let fields = PolicyChange.diff(old.json(), desired.json())
        if !fields.isEmpty {
            changes.append(PolicyChange(action: .update, kind: "settings", name: current.tenant.name, path: "settings", fields: fields))
            var tenant = current.tenant
            tenant.settings = desired
            tenant.updatedAt = now
            ops.append { [tenant] conn in try conn.updateTenant(tenant) }
        }
        return desired
    }

    /// The pricing table after the apply.
    mutating func planPricing(_ value: JSONValue?, settings: TenantSettings) throws -> PricingTable {
        var table = current.pricing
        if value != nil {
            var named: Set<String> = []
            for (i, v) in try Self.list(value, "pricing").enumerated() {
                let model = v["model"]?.stringValue ?? "\(i)"
                let entry = try PricingController.entry(v, "pricing.\(model)")
                guard named.insert(entry.model).inserted else { throw FieldError("pricing.\(model)", "lists the model more than once") }
                let tenantId = tenantId
                let now = now
                if let old = current.pricing.first(where: { $0.model == entry.model }) {
                    let fields = PolicyChange.diff(old.price.json(), entry.price.json())
                    if fields.isEmpty { continue }
                    changes.append(PolicyChange(action: .update, kind: "price", name: entry.model, path: "pricing.\(model)", fields: fields))
                    table.removeAll { $0.model == entry.model }
                } else {
                    changes.append(
                        PolicyChange(
                            action: .create, kind: "price", name: entry.model, path: "pricing.\(model)",
                            fields: PolicyChange.created(entry.price.json())))
                }
                table.append(entry)
                ops.append { conn in try conn.upsertPriceEntry(tenantId: tenantId, entry, at: now) }
            }
            if prune {
                for old in current.pricing where !named.contains(old.model) {
                    changes.append(PolicyChange(action: .delete, kind: "price", name: old.model, path: "pricing.\(old.model)"))
                    table.removeAll { $0.model == old.model }
                    let tenantId = tenantId
                    ops.append { conn in _ = try conn.deletePriceEntry(tenantId: tenantId, model: old.model) }
                }
            }
        }
        return PricingTable(entries: table, defaultPrice: settings.defaultPrice, toolCallMicros: settings.toolCallPriceMicros)
    }
}
