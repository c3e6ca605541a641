import Foundation
import HTTPTypes
import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// Stored responses: a request that continues one (`previous_response_id`) and the calls on one
/// (`GET`, `DELETE`, `cancel`, `input_items`) go to the resource that created it, and only for the
/// tenant and key that created it. The ledger row of the creating request is the record, so it
/// survives restarts.
extension DataPlaneController {
    /// The resource that holds `responseId` for this caller, and the model it was created with.
    func pin(_ responseId: String, caller: Caller) async throws -> (resourceId: String, model: String) {
        let key = caller.key
        let tenantId = caller.tenant.id
        let owner = try await reads.read { conn in
            try conn.responseOwner(
                responseId: responseId, tenantId: tenantId, keyId: key.kind == .projectKey ? key.id : nil, seatId: key.kind == .seat ? key.id : nil)
        }
        guard let owner else {
            throw Refusal(.responseNotFound, "no response '\(responseId.prefix(100))' was created with this key")
        }
        let resource = caller.catalog.resource(owner.resourceId, tenantId: tenantId)
        guard let resource, caller.project.poolIds.contains(resource.resource.poolId),
            ![.revoked, .suspended, .rejected].contains(resource.resource.state)
        else {
            throw Refusal(
                .responseUnavailable,
                "response '\(responseId.prefix(100))' is held by a resource that is no longer in this key's pools, and no other resource "
                    + "knows it; start again without previous_response_id")
        }
        return owner
    }

    /// `GET`/`DELETE /v1/responses/{id}`, `POST .../cancel`, `GET .../input_items`.
    func stored(_ request: Request, _ context: AppRequestContext, _ action: StoredResponse.Action) async throws -> Response {
        let startNanos = DispatchTime.now().uptimeNanoseconds
        let now = clock.nowMs()
        let caller: Caller
        do { caller = try Caller.authenticate(request, catalog: catalog.current, now: now) } catch { throw refusedEarly(error, context) }
        let id = try context.parameters.require("response_id")
        guard !id.isEmpty, id.utf8.count <= 200 else { throw Refusal(.responseNotFound, "no such response") }
        if action == .get, request.uri.queryParameters["stream"].map({ $0 == "true" }) ?? false {
            throw Refusal(.invalidRequest, "streaming a stored response is for background responses, which the pool does not offer")
        }
        let owner = try await pin(id, caller: caller)
        let dialect = StoredResponse(action: action, responseId: id, query: Self.passedQuery(request.uri.query), model: owner.model)
        let parsed = try dialect.parse([], headers: request.headers)
        return try await run(dialect, parsed, caller: caller, pinned: owner.resourceId, request, context, now: now, startNanos: startNanos)
    }

    /// The client's query parameters that a stored-response call passes on; never its key.
    static let passedParameters: Set<String> = ["include[]", "include", "include_obfuscation", "limit", "after", "before", "order"]

    static func passedQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        return query.split(separator: "&").filter { item in
            let name = item.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            return passedParameters.contains(name.removingPercentEncoding ?? name)
        }.joined(separator: "&")
    }
}

extension Optional {
    /// `map` with an async transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
