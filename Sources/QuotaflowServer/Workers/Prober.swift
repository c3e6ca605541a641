import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// One probe of a resource: reachability and latency, the credential, the route, the claimed models
/// and the upstream's rate-limit headers. Probes are free (the models list, or Anthropic's token
/// count), with a 1-token completion only when the resource asks for one.
///
/// Admission must prove that the credential and the route work: a provider with a models list that
/// answers 404 there has a wrong base URL; a relay without a models list needs the completion probe
/// or an admin's recorded waiver.
struct Prober: Sendable {
    let clients: UpstreamClients
    let config: AppConfig
    let clock: any WallClock
    let oauth: OAuthCredentials

    struct Run: Sendable {
        var outcome: ProbeOutcome
        var checks: [JSONValue] = []
        /// The credential the probe sends (an OAuth resource's current access token).
        var credential = ""
    }

    static func seconds(_ ms: Int64) -> String { ms % 1000 == 0 ? "\(ms / 1000) s" : "\(ms) ms" }

    func authHeaders(_ r: RoutableResource, credential: String) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add(name: "user-agent", value: "quotaflow-verifier")
        guard r.resource.leaseMode != .passthrough else { return h }
        if r.resource.wireFormat == .anthropic { h.add(name: "anthropic-version", value: "2023-06-01") }
        // OAuth access tokens are bearer tokens whatever the wire format.
        switch r.resource.oauth == nil ? r.resource.wireFormat : .openai {
        case .anthropic: h.add(name: "x-api-key", value: credential)
        case .gemini: h.add(name: "x-goog-api-key", value: credential)
        case .openai: h.add(name: "authorization", value: "Bearer \(credential)")
        }
        return h
    }

    /// Where the wire format lists models.
    static func modelsURL(_ r: RoutableResource) -> String {
        switch r.resource.wireFormat {
        case .anthropic: return r.baseURL + "/v1/models"
        case .gemini: return r.baseURL + "/v1beta/models?pageSize=1000"
        case .openai: return r.baseURL + "/models"
        }
    }

    func send(
        _ http: HTTPClient, _ url: String, method: HTTPMethod, headers: HTTPHeaders, body: JSONValue?
    ) async throws
        -> (HTTPClientResponse, ByteBuffer)
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers = headers
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(body)))
        }
        let response = try await http.execute(request, deadline: NIODeadline.now() + .milliseconds(config.probeTimeoutMs))
        return (response, try await response.body.collect(upTo: 4 << 20))
    }

    static func failureReason(status: UInt) -> String {
        switch status {
        case 401: return "401 from upstream: the key was refused"
        case 403: return "403 from upstream: the key lacks permission"
        case 404: return "404 from upstream: the base URL does not point at the provider's API"
        case 429: return "429 from upstream: rate limited"
        default: return "\(status) from upstream"
        }
    }

    /// Sets the outcome for a non-2xx answer: a refused credential, a rate limit (which proves the
    /// credential works and is retried at the reset), or another failure.
    func refuse(_ run: inout Run, status: UInt, headers: HTTPHeaders, what: String) {
        let limits = RateLimitInfo.parse(headers.map { ($0.name, $0.value) }, nowMs: clock.nowMs())
        let reason = (what.isEmpty ? "" : what + ": ") + Self.failureReason(status: status)
        run.outcome.ok = false
        run.outcome.status = Int(status)
        run.outcome.reason = reason
        if status == 401 || status == 403 { run.outcome.credentialRefused = true }
        if status == 429 {
            let now = clock.nowMs()
            let until = min(limits.resetAt ?? now + config.defaultCooldownMs, now + config.maxCooldownMs)
            run.outcome.rateLimitedUntil = max(until, now + 1000)
            run.outcome.reason = reason + " until \(Timestamp.format(run.outcome.rateLimitedUntil!))"
        }
    }

    /// `families`: also probe each API family the resource declares (on admission and re-verification;
    /// scheduled probes check the models list only).
    func probe(_ r: RoutableResource, families: Bool = true) async -> Run {
        let res = r.resource
        let started = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Int64 { Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) }
        var run = Run(outcome: ProbeOutcome(ok: false, reason: ""))
        func check(_ name: String, _ ok: Bool, _ detail: String) {
            run.checks.append(["check": .string(name), "ok": .bool(ok), "detail": .string(detail)])
        }
        if res.kind != .overflow && res.attestation == nil {
            check("attestation", false, "missing")
            run.outcome.reason = "no owner attestation: record who confirmed permission to connect this resource"
            return run
        }
        let http: HTTPClient
        do { http = try await clients.client(for: r.target, checked: r.egressChecked, use: .whole) } catch {
            check("egress", false, error.description)
            run.outcome.reason = "the upstream address is not allowed: \(error.description)"
            return run
        }
        var credential = r.credential
        if res.oauth != nil {
            do { credential = try await oauth.token(for: r) } catch {
                check("credential", false, "\(error)")
                run.outcome = ProbeOutcome(ok: false, reason: "\(error)", latencyMs: elapsed())
                return run
            }
        }
        run.credential = credential
        if res.provider.isCloud { return await probeCloud(r, http: http, run: run, started: started) }
        let modelsURL = Self.modelsURL(r)
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            (response, body) = try await send(http, modelsURL, method: .GET, headers: authHeaders(r, credential: run.credential), body: nil)
        } catch {
            let text = "\(error)".lowercased()
            let timedOut = text.contains("deadline") || text.contains("timeout")
            let reason = timedOut ? "no answer within \(Self.seconds(config.probeTimeoutMs))" : "the upstream could not be reached"
            check("reachable", false, reason)
            run.outcome = ProbeOutcome(ok: false, reason: reason, latencyMs: elapsed())
            return run
        }
        let latency = elapsed()
        let limits = RateLimitInfo.parse(response.headers.map { ($0.name, $0.value) }, nowMs: clock.nowMs())
        check("reachable", true, "answered in \(latency) ms")
        let status = response.status.code
        run.outcome = ProbeOutcome(ok: false, reason: "", status: Int(status), latencyMs: latency, rateLimits: limits)
        if res.leaseMode == .passthrough {
            // Nothing to prove a credential with: each holder's client brings its own, and its answers are the proof.
            check("credential", true, "none stored: each holder's client sends its own subscription token")
            run.outcome.ok = status < 500
            run.outcome.reason = run.outcome.ok ? "reachable; passthrough stores no credential" : Self.failureReason(status: status)
            return run
        }
        if !limits.evidence.isEmpty { check("rate_limits", true, limits.evidence.map { "\($0.0)=\($0.1)" }.joined(separator: "; ")) }
        var routeProven = false
        switch status {
        case 200..<300:
            check("credential", true, "accepted")
            if let missing = Self.unlistedModels(claimed: res.models, listed: Self.modelIds(body, wireFormat: res.wireFormat)) {
                check("models", false, missing)
                run.outcome.reason = missing
                return run
            }
            check("models", true, "the models list includes the claimed models")
            routeProven = true
        case 404 where res.provider != .openaiCompatible:
            let reason =
                "404 from upstream: \(modelsURL) does not exist, so the base URL does not point at the provider's API"
                + (res.wireFormat == .openai ? " (an OpenAI-format base URL ends in /v1)" : "")
            check("route", false, reason)
            run.outcome.reason = reason
            return run
        case 404 where res.wireFormat == .anthropic:
            // A relay without a models list: the free token-count call checks the key and the route.
            let model = res.models.first { !$0.contains("*") } ?? "claude-sonnet-4-5"
            do {
                let (r2, _) = try await send(
                    http, r.baseURL + "/v1/messages/count_tokens", method: .POST, headers: authHeaders(r, credential: run.credential),
                    body: ["model": .string(model), "messages": [["role": "user", "content": "ping"]]])
                guard (200..<300).contains(r2.status.code) else {
                    refuse(&run, status: r2.status.code, headers: r2.headers, what: "token-count call")
                    check("credential", false, run.outcome.reason)
                    return run
                }
                check("credential", true, "accepted by the token-count call")
                check("models", true, "no models list upstream; the token-count call proved the route")
                routeProven = true
            } catch {
                check("credential", false, "token-count call failed")
                run.outcome.reason = "no models list upstream and the token-count call failed"
                return run
            }
        case 404:
            if res.probe.completion {
                check("models", true, "no models list upstream; the completion probe checks the route")
            } else if let waiver = res.probe.waiver {
                check("models", true, "no models list upstream; admitted on the waiver of \(waiver.by): \(waiver.note)")
                routeProven = true
            } else {
                let reason =
                    "no models list at \(modelsURL) (404), so nothing proves the credential and the route: set probe.completion "
                    + "for a 1-token completion probe, or record an admin's probe.waiver"
                check("route", false, reason)
                run.outcome.reason = reason
                return run
            }
        default:
            refuse(&run, status: status, headers: response.headers, what: "")
            check("credential", status != 401 && status != 403, run.outcome.reason)
            return run
        }
        if families, routeProven {
            guard await familyProbes(r, http: http, run: &run) else { return run }
        }
        if res.probe.completion {
            guard await completionProbe(r, http: http, run: &run) else { return run }
            routeProven = true
        }
        guard routeProven else {
            run.outcome.reason = "the route was not proven"
            return run
        }
        run.outcome.ok = true
        run.outcome.reason = "passed"
        return run
    }

    /// A 1-token completion with the resource's probe model; `false` (with the outcome set) when it fails.
    func completionProbe(_ r: RoutableResource, http: HTTPClient, run: inout Run) async -> Bool {
        let res = r.resource
        func check(_ name: String, _ ok: Bool, _ detail: String) {
            run.checks.append(["check": .string(name), "ok": .bool(ok), "detail": .string(detail)])
        }
        guard let model = res.probe.model ?? res.models.first(where: { !$0.contains("*") }) else {
            check("completion", false, "no exact model name to probe")
            run.outcome.reason = "the completion probe needs an exact model name"
            return false
        }
        let prompt: JSONValue
        let url: String
        switch res.wireFormat {
        case .anthropic:
            prompt = ["model": .string(model), "max_tokens": 1, "messages": [["role": "user", "content": "ping"]]]
            url = r.baseURL + "/v1/messages"
        case .gemini:
            prompt = ["contents": [["role": "user", "parts": [["text": "ping"]]]], "generationConfig": ["maxOutputTokens": 1]]
            url = r.baseURL + "/v1beta/models/\(model):generateContent"
        case .openai where !res.serves(family: .chat) && res.serves(family: .responses):
            prompt = ["model": .string(model), "max_output_tokens": 16, "input": "ping", "store": false]
            url = r.baseURL + "/responses"
        case .openai:
            prompt = ["model": .string(model), "max_tokens": 1, "messages": [["role": "user", "content": "ping"]]]
            url = r.baseURL + "/chat/completions"
        }
        do {
            let (r3, _) = try await send(http, url, method: .POST, headers: authHeaders(r, credential: run.credential), body: prompt)
            guard (200..<300).contains(r3.status.code) else {
                refuse(&run, status: r3.status.code, headers: r3.headers, what: "completion probe")
                check("completion", false, run.outcome.reason)
                return false
            }
            check("completion", true, "1-token completion with \(model) succeeded")
            return true
        } catch {
            check("completion", false, "no answer")
            run.outcome.reason = "completion probe: no answer within \(Self.seconds(config.probeTimeoutMs))"
            return false
        }
    }

    static func modelIds(_ body: ByteBuffer, wireFormat: WireFormat) -> [String]? {
        guard let value = try? JSONParser.parse(Array(body.readableBytesView)) else { return nil }
        if wireFormat == .gemini {
            guard let models = value["models"]?.arrayValue else { return nil }
            return models.compactMap { $0["name"]?.stringValue }.map { $0.hasPrefix("models/") ? String($0.dropFirst(7)) : $0 }
        }
        guard let data = value["data"]?.arrayValue else { return nil }
        return data.compactMap { $0["id"]?.stringValue }
    }

    /// `nil` when every claimed exact model is listed and some claim matches a listed model;
    /// otherwise the reason the resource is rejected.
    static func unlistedModels(claimed: [String], listed: [String]?) -> String? {
        guard let listed else { return nil }
        let exact = claimed.filter { !$0.contains("*") }
        let missing = exact.filter { !listed.contains($0) }
        let anyMatch = claimed.contains { pattern in listed.contains { ModelPattern.matches(pattern: pattern, $0) } }
        if !anyMatch { return "the models list does not include any model this resource claims to serve" }
        if !missing.isEmpty { return "the models list does not include claimed model(s): \(missing.prefix(5).joined(separator: ", "))" }
        return nil
    }
}
