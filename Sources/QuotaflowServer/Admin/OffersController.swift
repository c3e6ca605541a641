import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/overflow-offers`: platform-owned metered capacity. The operator manages offers;
/// tenant admins may read them to opt in with an `overflow` resource.
struct OffersController {
    let env: AdminEnvironment
    let cipher: CredentialCipher

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("overflow-offers", use: create)
        admin.get("overflow-offers", use: list)
        admin.get("overflow-offers/{offer_id}", use: get)
        admin.patch("overflow-offers/{offer_id}", use: update)
        admin.post("overflow-offers/{offer_id}/rotate-credential", use: rotate)
    }

    static let writable: Set<String> = ["name", "base_url", "models", "price", "active"]

    static func read(_ b: ObjectReader, into o: inout OverflowOffer) throws {
        o.name = try b.required("name", Field.name)
        o.baseURL = try b.optional("base_url", Field.url) ?? ResourcesController.defaultBaseURL(o.provider, o.wireFormat) ?? ""
        if o.baseURL.isEmpty { throw FieldError("base_url", "is required for openai_compatible offers") }
        o.models = try b.required("models", Field.modelPatterns)
        if o.models.isEmpty { throw FieldError("models", "must list at least one model") }
        o.price = try b.required("price", TokenPrice.converter)
        o.active = try b.optional("active", Field.bool) ?? true
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        try context.requireOperator()
        let body = try await env.body(request)
        let now = env.now
        var offer = OverflowOffer(
            id: Identifier.make("ofr"), name: "", provider: .openai, wireFormat: .openai, baseURL: "", models: [],
            price: TokenPrice(inputPerMTok: 0, outputPerMTok: 0), credentialHint: "", createdAt: now, updatedAt: now)
        let credential: String = try validating {
            try body.rejectUnknown(Self.writable.union(["provider", "wire_format", "credential"]))
            offer.provider = try body.required("provider", Field.enumeration(Provider.self))
            offer.wireFormat = try body.optional("wire_format", Field.enumeration(WireFormat.self)) ?? offer.provider.defaultWireFormat
            try Self.read(body, into: &offer)
            return try body.required("credential", ResourcesController.credentialField)
        }
        offer.credentialHint = credentialHint(credential)
        let ciphertext = try cipher.seal(credential, context: "offer:\(offer.id)")
        let who = try context.admin
        try await env.changes.write { [offer] conn in
            try conn.insertOffer(offer, ciphertext: ciphertext)
            try env.audit(conn, who, tenant: nil, "offer.create", "overflow_offer", offer.id, Rep.offer(offer))
        }
        return JSONResponse.make(Rep.offer(offer), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let who = try context.admin
        let offers = try await env.reads.read { conn in try conn.offers() }
        return JSONResponse.list(offers.filter { who.isOperator || $0.active }.map(Rep.offer))
    }

    func load(_ id: String, who: AdminIdentity) async throws -> OverflowOffer {
        guard let o = try await env.reads.read({ conn in try conn.offer(id: id) }), who.isOperator || o.active else {
            throw ProblemError.notFound("overflow offer '\(id.prefix(64))'")
        }
        return o
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        JSONResponse.make(Rep.offer(try await load(try context.parameters.require("offer_id"), who: try context.admin)))
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        try context.requireOperator()
        let who = try context.admin
        let current = try await load(try context.parameters.require("offer_id"), who: who)
        let body = try await env.body(request)
        var updated = current
        let writable: JSONValue = [
            "name": .string(current.name), "base_url": .string(current.baseURL), "models": .strings(current.models), "price": current.price.json(),
            "active": .bool(current.active),
        ]
        try validating {
            let merged = try ObjectReader(JSONMergePatch.apply(.object(body.members), to: writable))
            try merged.rejectUnknown(Self.writable)
            try Self.read(merged, into: &updated)
        }
        updated.updatedAt = env.now
        try await env.changes.write { [updated] conn in
            try conn.updateOffer(updated)
            try env.audit(conn, who, tenant: nil, "offer.update", "overflow_offer", updated.id, Rep.diff(Rep.offer(current), Rep.offer(updated)))
        }
        return JSONResponse.make(Rep.offer(updated))
    }

    @Sendable func rotate(_ request: Request, context: AppRequestContext) async throws -> Response {
        try context.requireOperator()
        let who = try context.admin
        var offer = try await load(try context.parameters.require("offer_id"), who: who)
        let body = try await env.body(request)
        let credential = try validating {
            try body.rejectUnknown(["credential"])
            return try body.required("credential", ResourcesController.credentialField)
        }
        let ciphertext = try cipher.seal(credential, context: "offer:\(offer.id)")
        offer.credentialHint = credentialHint(credential)
        offer.updatedAt = env.now
        try await env.changes.write { [offer] conn in
            try conn.setOfferCredential(id: offer.id, ciphertext: ciphertext, hint: offer.credentialHint, at: offer.updatedAt)
            try env.audit(
                conn, who, tenant: nil, "offer.rotate_credential", "overflow_offer", offer.id, ["credential_hint": .string(offer.credentialHint)])
        }
        return JSONResponse.make(Rep.offer(offer))
    }
}
