import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Probes of cloud platforms: a signed, free list call proves the credential and the route.
extension Prober {
    /// Vertex AI: a token minted from the service account (done before this is called), then a free
    /// token count for the resource's first model: Claude's `count-tokens:rawPredict`, Gemini's
    /// `:countTokens`. Vertex lists no Claude models, so the count is the route's proof.
    func probeVertex(_ r: RoutableResource, http: HTTPClient, run: Run, started: UInt64) async -> Run {
        var run = run
        func elapsed() -> Int64 { Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) }
        func check(_ name: String, _ ok: Bool, _ detail: String) {
            run.checks.append(["check": .string(name), "ok": .bool(ok), "detail": .string(detail)])
        }
        check("credential", true, "a token was minted from the service account")
        let cloud = r.resource.cloud ?? CloudSettings()
        let model = cloud.platformModel(r.resource.models.first { !$0.contains("*") } ?? "")
        let base = r.baseURL + "/v1/projects/\(SigV4.encode(cloud.project))/locations/\(SigV4.encode(cloud.region))/publishers"
        let (url, body): (String, JSONValue) =
            r.resource.wireFormat == .gemini
            ? (base + "/google/models/\(Vertex.segment(model)):countTokens", ["contents": [["role": "user", "parts": [["text": "ping"]]]]])
            : (
                base + "/anthropic/models/count-tokens:rawPredict",
                ["model": .string(model), "anthropic_version": .string(Vertex.anthropicVersion), "messages": [["role": "user", "content": "ping"]]]
            )
        var headers = HTTPHeaders()
        headers.add(name: "user-agent", value: "quotaflow-verifier")
        headers.add(name: "authorization", value: "Bearer \(run.credential)")
        let response: HTTPClientResponse
        do { (response, _) = try await send(http, url, method: .POST, headers: headers, body: body) } catch {
            check("reachable", false, "the upstream could not be reached")
            run.outcome = ProbeOutcome(ok: false, reason: "the upstream could not be reached", latencyMs: elapsed())
            return run
        }
        let status = response.status.code
        check("reachable", true, "answered in \(elapsed()) ms")
        run.outcome = ProbeOutcome(ok: false, reason: "", status: Int(status), latencyMs: elapsed())
        guard (200..<300).contains(status) else {
            refuse(&run, status: status, headers: response.headers, what: "token count")
            check("route", false, run.outcome.reason)
            return run
        }
        check("route", true, "a free token count for \(model) was answered")
        run.outcome.ok = true
        run.outcome.reason = "ok"
        return run
    }

    /// Azure OpenAI: `GET {endpoint}/openai/models?api-version=...` with the api-key (or Entra token).
    /// Deployments are named by the admin's model map, so models are not matched against the list.
    func probeAzure(_ r: RoutableResource, http: HTTPClient, run: Run, started: UInt64) async -> Run {
        var run = run
        func elapsed() -> Int64 { Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) }
        func check(_ name: String, _ ok: Bool, _ detail: String) {
            run.checks.append(["check": .string(name), "ok": .bool(ok), "detail": .string(detail)])
        }
        var headers = HTTPHeaders()
        headers.add(name: "user-agent", value: "quotaflow-verifier")
        if r.resource.oauth != nil {
            headers.add(name: "authorization", value: "Bearer \(run.credential)")
        } else {
            headers.add(name: "api-key", value: run.credential)
        }
        let version = SigV4.encode(r.resource.cloud?.apiVersion ?? "2024-10-21")
        let response: HTTPClientResponse
        do {
            (response, _) = try await send(http, r.baseURL + "/openai/models?api-version=\(version)", method: .GET, headers: headers, body: nil)
        } catch {
            check("reachable", false, "the upstream could not be reached")
            run.outcome = ProbeOutcome(ok: false, reason: "the upstream could not be reached", latencyMs: elapsed())
            return run
        }
        let status = response.status.code
        check("reachable", true, "answered in \(elapsed()) ms")
        run.outcome = ProbeOutcome(ok: false, reason: "", status: Int(status), latencyMs: elapsed())
        guard (200..<300).contains(status) else {
            refuse(&run, status: status, headers: response.headers, what: "models list")
            check("credential", false, run.outcome.reason)
            return run
        }
        check("credential", true, "the models list was accepted")
        run.outcome.ok = true
        run.outcome.reason = "ok"
        return run
    }

    /// Bedrock: `GET /foundation-models?byProvider=Anthropic` on the control plane
    /// (`bedrock.{region}` for the public runtime host, the base URL itself otherwise), SigV4-signed.
    /// Models are not matched against the list: a resource maps client names to model or
    /// inference-profile ids, and profiles are not in it.
    func probeBedrock(_ r: RoutableResource, http: HTTPClient, run: Run, started: UInt64) async -> Run {
        var run = run
        func elapsed() -> Int64 { Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) }
        func check(_ name: String, _ ok: Bool, _ detail: String) {
            run.checks.append(["check": .string(name), "ok": .bool(ok), "detail": .string(detail)])
        }
        guard let credentials = SigV4.Credentials(credential: r.credential), let region = r.resource.cloud?.region,
            var url = URLComponents(string: r.baseURL), let runtimeHost = url.host
        else {
            check("credential", false, "not ACCESS_KEY_ID:SECRET_ACCESS_KEY")
            run.outcome.reason = "the Bedrock credential is not an access key pair"
            return run
        }
        let host = runtimeHost.hasPrefix("bedrock-runtime.") ? "bedrock." + runtimeHost.dropFirst("bedrock-runtime.".count) : runtimeHost
        url.host = host
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        let path = url.percentEncodedPath + "/foundation-models"
        let query = "byProvider=Anthropic"
        var headers = HTTPHeaders()
        headers.add(name: "host", value: hostHeader)
        headers.add(name: "user-agent", value: "quotaflow-verifier")
        for (name, value) in SigV4.sign(
            method: "GET", host: hostHeader, path: path, query: query, headers: [], body: [], credentials: credentials, region: region,
            service: "bedrock", nowMs: clock.nowMs())
        {
            headers.add(name: name, value: value)
        }
        let response: HTTPClientResponse
        do {
            (response, _) = try await send(
                http, "\(url.scheme ?? "https")://\(hostHeader)\(path)?\(query)", method: .GET, headers: headers, body: nil)
        } catch {
            check("reachable", false, "the upstream could not be reached")
            run.outcome = ProbeOutcome(ok: false, reason: "the upstream could not be reached", latencyMs: elapsed())
            return run
        }
        let status = response.status.code
        check("reachable", true, "answered in \(elapsed()) ms")
        run.outcome = ProbeOutcome(ok: false, reason: "", status: Int(status), latencyMs: elapsed())
        guard (200..<300).contains(status) else {
            refuse(&run, status: status, headers: response.headers, what: "foundation-models list")
            check("credential", false, run.outcome.reason)
            return run
        }
        check("credential", true, "the signed foundation-models list was accepted")
        run.outcome.ok = true
        run.outcome.reason = "ok"
        return run
    }
}
