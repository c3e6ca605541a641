import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Probes of cloud platforms: one free call proves the credential and the route. Models are not
/// matched against a list: each resource maps client names to the platform's (deployments, inference
/// profiles, `@date` versions), which the lists do not show.
extension Prober {
    /// A cloud probe's call.
    struct CloudCall {
        var url: String
        var method: HTTPMethod = .GET
        var headers = HTTPHeaders()
        var body: JSONValue?
        /// What the probe proved when the call succeeds.
        var proof: String
        /// What the call was, for failure reasons.
        var what: String
    }

    func probeCloud(_ r: RoutableResource, http: HTTPClient, run: Run, started: UInt64) async -> Run {
        var run = run
        func elapsed() -> Int64 { Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) }
        func check(_ name: String, _ ok: Bool, _ detail: String) {
            run.checks.append(["check": .string(name), "ok": .bool(ok), "detail": .string(detail)])
        }
        let call: CloudCall
        switch r.resource.provider {
        case .bedrock:
            guard let c = bedrockCall(r) else {
                check("credential", false, "not ACCESS_KEY_ID:SECRET_ACCESS_KEY")
                run.outcome.reason = "the Bedrock credential is not an access key pair"
                return run
            }
            call = c
        case .azure: call = azureCall(r, token: run.credential)
        default:
            check("credential", true, "a token was minted from the service account")
            call = vertexCall(r, token: run.credential)
        }
        var headers = call.headers
        headers.add(name: "user-agent", value: "quotaflow-verifier")
        // Bedrock's control plane is another host than the base URL's: it passes the egress rule on its own.
        var http = http
        if r.resource.provider == .bedrock {
            do { http = try await clients.client(for: URLTarget(call.url), checked: r.egressChecked, use: .whole) } catch {
                check("egress", false, error.description)
                run.outcome.reason = "the upstream address is not allowed: \(error.description)"
                return run
            }
        }
        let response: HTTPClientResponse
        do { (response, _) = try await send(http, call.url, method: call.method, headers: headers, body: call.body) } catch {
            check("reachable", false, "the upstream could not be reached")
            run.outcome = ProbeOutcome(ok: false, reason: "the upstream could not be reached", latencyMs: elapsed())
            return run
        }
        let status = response.status.code
        check("reachable", true, "answered in \(elapsed()) ms")
        run.outcome = ProbeOutcome(ok: false, reason: "", status: Int(status), latencyMs: elapsed())
        guard (200..<300).contains(status) else {
            refuse(&run, status: status, headers: response.headers, what: call.what)
            check("route", false, run.outcome.reason)
            return run
        }
        check("route", true, call.proof)
        run.outcome.ok = true
        run.outcome.reason = "ok"
        return run
    }

    /// Bedrock: `GET /foundation-models?byProvider=Anthropic` on the control plane (`bedrock.{region}`
    /// for the public runtime host, the base URL itself otherwise), SigV4-signed.
    func bedrockCall(_ r: RoutableResource) -> CloudCall? {
        guard let credentials = SigV4.Credentials(credential: r.credential), let region = r.resource.cloud?.region,
            let url = URLComponents(string: r.baseURL), let runtimeHost = url.host
        else { return nil }
        // bedrock-runtime[-fips].{region}.amazonaws.com → bedrock[-fips].{region}...; a private endpoint is asked itself.
        var host = runtimeHost
        for (runtime, control) in [("bedrock-runtime-fips.", "bedrock-fips."), ("bedrock-runtime.", "bedrock.")] where runtimeHost.hasPrefix(runtime)
        {
            host = control + runtimeHost.dropFirst(runtime.count)
            break
        }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        let path = url.percentEncodedPath + "/foundation-models"
        let query = "byProvider=Anthropic"
        var headers = HTTPHeaders()
        headers.add(name: "host", value: hostHeader)
        for (name, value) in SigV4.sign(
            method: "GET", host: hostHeader, path: path, query: query, headers: [], body: [], credentials: credentials, region: region,
            service: "bedrock", nowMs: clock.nowMs())
        {
            headers.add(name: name, value: value)
        }
        return CloudCall(
            url: "\(url.scheme ?? "https")://\(hostHeader)\(path)?\(query)", headers: headers,
            proof: "the signed foundation-models list was accepted",
            what: "foundation-models list")
    }

    /// Azure OpenAI: `GET {endpoint}/openai/models?api-version=...` with the api-key (or Entra token).
    func azureCall(_ r: RoutableResource, token: String) -> CloudCall {
        var headers = HTTPHeaders()
        if r.resource.oauth != nil {
            headers.add(name: "authorization", value: "Bearer \(token)")
        } else {
            headers.add(name: "api-key", value: token)
        }
        let version = SigV4.encode(r.resource.cloud?.apiVersion ?? "2024-10-21")
        return CloudCall(
            url: r.baseURL + "/openai/models?api-version=\(version)", headers: headers, proof: "the models list was accepted", what: "models list")
    }

    /// Vertex AI: a free token count for the resource's first model (Claude's `count-tokens:rawPredict`,
    /// Gemini's `:countTokens`); Vertex lists no Claude models.
    func vertexCall(_ r: RoutableResource, token: String) -> CloudCall {
        let cloud = r.resource.cloud ?? CloudSettings()
        let model = cloud.platformModel(r.resource.models.first { !$0.contains("*") } ?? "")
        let base = r.baseURL + "/v1/projects/\(SigV4.encode(cloud.project))/locations/\(SigV4.encode(cloud.region))/publishers"
        var headers = HTTPHeaders()
        headers.add(name: "authorization", value: "Bearer \(token)")
        if r.resource.wireFormat == .gemini {
            return CloudCall(
                url: base + "/google/models/\(Vertex.segment(model)):countTokens", method: .POST, headers: headers,
                body: ["contents": [["role": "user", "parts": [["text": "ping"]]]]], proof: "a free token count for \(model) was answered",
                what: "token count")
        }
        return CloudCall(
            url: base + "/anthropic/models/count-tokens:rawPredict", method: .POST, headers: headers,
            body: [
                "model": .string(model), "anthropic_version": .string(Vertex.anthropicVersion), "messages": [["role": "user", "content": "ping"]],
            ],
            proof: "a free token count for \(model) was answered", what: "token count")
    }
}
