import AsyncHTTPClient
import NIOHTTP1
import QuotaflowCore

/// The free check of each API family a resource declares: a request the provider must refuse
/// (an empty body), which shows whether the endpoint exists (not 404) and accepts the credential
/// (not 401/403) without generating anything. Gemini's token count is free outright.
extension Prober {
    func familyProbes(_ r: RoutableResource, http: HTTPClient, run: inout Run) async -> Bool {
        for family in r.resource.families {
            let (url, body) = Self.familyProbe(family, r)
            let status: UInt
            do {
                (status, _) = try await send(http, url, method: .POST, headers: authHeaders(r, credential: run.credential), body: body).0
                    .statusAndHeaders
            } catch {
                run.checks.append(["check": .string("family:\(family.rawValue)"), "ok": false, "detail": "no answer"])
                run.outcome.reason = "the \(family.rawValue) endpoint \(url) did not answer within \(Self.seconds(config.probeTimeoutMs))"
                return false
            }
            // Only a missing endpoint or a refused credential fails: a 403 to an empty request can be
            // about the request, and the models list already accepted the credential.
            let served = status != 404 && status != 405 && status != 401
            let detail: String
            switch status {
            case 404, 405: detail = "\(status) at \(url): this upstream does not serve \(family.rawValue); remove it from the resource's families"
            case 401: detail = "\(status) at \(url): the credential is refused for \(family.rawValue)"
            default: detail = "served (\(status) to an empty request)"
            }
            run.checks.append(["check": .string("family:\(family.rawValue)"), "ok": .bool(served), "detail": .string(detail)])
            if !served {
                run.outcome.ok = false
                run.outcome.status = Int(status)
                run.outcome.reason = detail
                if status == 401 { run.outcome.credentialRefused = true }
                return false
            }
        }
        return true
    }

    /// The URL and the deliberately empty (or free) body that probes `family` on `r`.
    static func familyProbe(_ family: ApiFamily, _ r: RoutableResource) -> (String, JSONValue) {
        switch family {
        case .chat: return (r.baseURL + "/chat/completions", [:])
        case .responses: return (r.baseURL + "/responses", [:])
        case .embeddings: return (r.baseURL + "/embeddings", [:])
        case .messages: return (r.baseURL + "/v1/messages", [:])
        case .gemini:
            let model = r.resource.models.first { !$0.contains("*") } ?? "gemini-2.5-flash"
            return (r.baseURL + "/v1beta/models/\(model):countTokens", ["contents": [["role": "user", "parts": [["text": "ping"]]]]])
        }
    }
}

extension HTTPClientResponse {
    var statusAndHeaders: (UInt, HTTPHeaders) { (status.code, headers) }
}
