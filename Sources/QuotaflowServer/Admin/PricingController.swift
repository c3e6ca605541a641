import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/pricing`: the tenant's list prices per model (what budgets count).
struct PricingController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/pricing", use: getPricing)
        admin.put("tenants/{tenant_id}/pricing", use: putPricing)
    }

    @Sendable func getPricing(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let entries = try await env.reads.read { conn in try conn.priceEntries(tenantId: tenantId) }
        let tenant = env.catalog.current.tenants[tenantId]
        return JSONResponse.make(
            ["data": .array(entries.map(Rep.price)), "default_price": tenant?.settings.defaultPrice?.json() ?? .null])
    }

    /// Replaces the whole table with the `entries` given.
    /// One price entry: a model name or pattern and its prices.
    static let entry: FieldConverter<PriceEntry> = { value, name in
        let r = try ObjectReader(value, path: name)
        let model = try r.required("model", Field.string(maxLength: 200))
        guard ModelPattern.isValid(model) else { throw FieldError(r.fieldName("model"), "must be a model name or pattern") }
        let rest = ObjectReader(members: r.members.filter { $0.0 != "model" }, path: name)
        return PriceEntry(model: model, price: try TokenPrice(reading: rest))
    }

    @Sendable func putPricing(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let body = try await env.body(request)
        let entries: [PriceEntry] = try validating {
            try body.rejectUnknown(["entries"])
            let list = try body.required(
                "entries",
                Field.array(maxCount: 2000, Self.entry))
            let names = list.map(\.model)
            if Set(names).count != names.count { throw FieldError("entries", "lists a model more than once") }
            return list
        }
        let who = try context.admin
        let now = env.now
        try await env.changes.write { conn in
            for old in try conn.priceEntries(tenantId: tenantId) where !entries.contains(where: { $0.model == old.model }) {
                _ = try conn.deletePriceEntry(tenantId: tenantId, model: old.model)
            }
            for entry in entries { try conn.upsertPriceEntry(tenantId: tenantId, entry, at: now) }
            try env.audit(conn, who, tenant: tenantId, "pricing.replace", "tenant", tenantId, ["entries": .int(Int64(entries.count))])
        }
        return JSONResponse.make(["data": .array(entries.map(Rep.price))])
    }
}
