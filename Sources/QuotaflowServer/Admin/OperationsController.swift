import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore
import QuotaflowStore

/// `GET /healthz`, `GET /readyz` and `GET /metrics` (operator or metrics token: metrics name every
/// tenant and resource).
struct OperationsController {
    let state: AppState
    let gateway: Gateway

    func register(on router: Router<AppRequestContext>) {
        router.get("healthz") { _, _ in JSONResponse.make(["status": "ok"]) }
        router.get("readyz") { _, _ in
            let database = await state.db.ping() && gateway.migrationsApplied
            let ready = database && state.serving
            var fields: [(String, JSONValue)] = [("status", .string(ready ? "ready" : "not_ready")), ("database", .bool(database))]
            if let fleet = state.fleet {
                fields.append(
                    (
                        "fleet",
                        [
                            "replica": .string(fleet.replicaId), "connected": .bool(fleet.isConnected),
                            "catalog_synced": .bool(fleet.isCurrent), "leader": .bool(fleet.isLeader),
                        ]
                    ))
            }
            return JSONResponse.make(.object(fields), status: ready ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { request, _ in
            guard let token = request.bearerToken, token.utf8.count <= 256 else { throw ProblemError.unauthorized }
            let digest = SecretDigest.of(token)
            guard SecretDigest.equal(digest, state.operatorDigest) || state.config.metricsTokenDigest.map({ SecretDigest.equal(digest, $0) }) == true
            else { throw ProblemError.unauthorized }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: gateway.metrics.exposition(gateway: gateway))))
        }
    }
}
