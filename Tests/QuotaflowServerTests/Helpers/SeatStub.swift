import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore
import Synchronization

/// An Anthropic-shaped upstream whose answers carry the subscription window headers the test sets
/// per credential (`x-api-key` or the bearer token), as a real subscription API does on every answer.
final class SeatStub: Sendable {
    struct Behaviour: Sendable {
        var status: Int = 200
        var headers: [(String, String)] = []
    }

    let behaviours = Mutex<[String: Behaviour]>([:])
    let recorder = Recorder()
    let models = ["claude-haiku-4-5", "claude-sonnet-4-5"]

    func set(_ credential: String, status: Int = 200, headers: [(String, String)]) {
        behaviours.withLock { $0[credential] = Behaviour(status: status, headers: headers) }
    }

    /// Which credential each client request (not the verifier's probes) arrived with.
    var credentialsSeen: [String] { recorder.all.map { Self.credential($0.headers) ?? "" } }

    static func credential(_ h: HTTPFields) -> String? {
        if let key = h[HTTPField.Name("x-api-key")!], !key.isEmpty { return key }
        guard let auth = h[.authorization], auth.hasPrefix("Bearer ") else { return nil }
        return String(auth.dropFirst(7))
    }

    /// Anthropic's unified window headers: a 5-hour and a 7-day window, resets in seconds since the epoch.
    static func unified(fiveHour: Double, fiveHourReset: Int64, sevenDay: Double, sevenDayReset: Int64, rejected: Bool = false) -> [(String, String)]
    {
        [
            ("anthropic-ratelimit-unified-status", rejected ? "rejected" : "allowed"),
            ("anthropic-ratelimit-unified-5h-utilization", String(fiveHour)), ("anthropic-ratelimit-unified-5h-reset", String(fiveHourReset / 1000)),
            ("anthropic-ratelimit-unified-5h-status", rejected && fiveHour >= 1 ? "rejected" : "allowed"),
            ("anthropic-ratelimit-unified-7d-utilization", String(sevenDay)), ("anthropic-ratelimit-unified-7d-reset", String(sevenDayReset / 1000)),
            ("anthropic-ratelimit-unified-7d-status", rejected && sevenDay >= 1 ? "rejected" : "allowed"),
            ("anthropic-ratelimit-unified-representative-claim", "five_hour"),
        ]
    }

    func start() async throws -> StubUpstream {
        try await StubUpstream.start { router in
            router.get("v1/models") { req, _ in
                guard Self.credential(req.headers) != nil else {
                    return Stub.json(
                        ["type": "error", "error": ["type": "authentication_error", "message": "x-api-key header is required"]], status: .unauthorized
                    )
                }
                return Stub.json(["data": .array(self.models.map { ["id": .string($0), "type": "model"] }), "has_more": false])
            }
            router.post("v1/messages") { req, _ in
                let body = try await Stub.record(self.recorder, req, path: "/v1/messages")
                guard let model = body["model"]?.stringValue else { return Stub.missingModel }
                let credential = Self.credential(req.headers) ?? ""
                let b = self.behaviours.withLock { $0[credential] } ?? Behaviour()
                var fields = HTTPFields()
                for (k, v) in b.headers { fields.append(HTTPField(name: HTTPField.Name(k)!, value: v)) }
                fields.append(HTTPField(name: HTTPField.Name("request-id")!, value: "req_stub"))
                if b.status == 429 {
                    return Stub.json(
                        ["type": "error", "error": ["type": "rate_limit_error", "message": "This request would exceed your rate limit."]],
                        status: .tooManyRequests, headers: fields)
                }
                guard b.status == 200 else {
                    return Stub.json(
                        ["type": "error", "error": ["type": "api_error", "message": "x"]], status: .init(code: b.status), headers: fields)
                }
                var r = Stub.anthropicAnswer(model: model)
                for f in fields { r.headers.append(f) }
                return r
            }
        }
    }
}
