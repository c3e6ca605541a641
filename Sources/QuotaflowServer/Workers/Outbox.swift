import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle

/// Delivers queued webhook events with retries and backoff. Deliveries are signed with
/// HMAC-SHA256 over "<timestamp>.<body>" and carry the event id for idempotency.
struct OutboxService: Service {
    let state: AppState
    let clients: UpstreamClients
    let metrics: Metrics
    /// Poked when events are queued (the alerts' wake-up).
    let wake: Wakeup

    static let maxAttempts = 10

    static func backoffMs(attempts: Int) -> Int64 { min(3_600_000, 5_000 * (Int64(1) << Int64(min(attempts, 20)))) }

    static func signature(secret: String, timestamp: Int64, body: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).\(body)".utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return "t=\(timestamp),v1=" + SecretDigest.hex(mac)
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if !state.leads {
                    await state.untilLeading()
                    continue
                }
                let now = state.clock.nowMs()
                var next: Int64?
                do {
                    let due = try await state.db.read { conn in try conn.dueDeliveries(now: now, limit: 20) }
                    for d in due where state.leads { await deliver(d) }
                    if due.count == 20 { continue }
                    next = try await state.db.read { conn in try conn.nextDeliveryTime() }
                } catch {
                    state.logger.error("outbox failed", metadata: ["error": "\(error)"])
                }
                let deadline = min(next ?? now + 60_000, now + 60_000)
                if deadline > now || next == nil { await wake.wait(untilMs: deadline, clock: state.clock) }
            }
        } onGracefulShutdown: {
            wake.poke()
        }
    }

    func deliver(_ d: Delivery) async {
        let now = state.clock.nowMs()
        var httpStatus: Int?
        var failure: String?
        do {
            guard let webhook = try await state.db.read({ conn in try conn.webhook(tenantId: d.tenantId, id: d.webhookId) }), webhook.active,
                let ciphertext = try await state.db.read({ conn in try conn.webhookSecret(id: d.webhookId) })
            else {
                try await state.db.write { conn in
                    try conn.recordDelivery(
                        id: d.id, status: .failed, attempts: d.attempts, nextAttemptAt: now, httpStatus: nil, error: "the webhook was removed",
                        deliveredAt: nil)
                }
                return
            }
            let secret = try state.cipher.open(ciphertext, context: "webhook:\(webhook.id)")
            let timestamp = now / 1000
            var request = HTTPClientRequest(url: webhook.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "quotaflow-webhooks")
            request.headers.add(name: "x-quotaflow-event-id", value: d.eventId)
            request.headers.add(name: "idempotency-key", value: d.eventId)
            request.headers.add(name: "x-quotaflow-event-type", value: d.eventType)
            request.headers.add(name: "x-quotaflow-signature", value: Self.signature(secret: secret, timestamp: timestamp, body: d.payload))
            request.body = .bytes(ByteBuffer(string: d.payload))
            let http = try await clients.client(for: URLTarget(webhook.url), checked: true, use: .whole)
            let response = try await http.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            httpStatus = Int(response.status.code)
            if !(200..<300).contains(response.status.code) { failure = "the endpoint answered \(response.status.code)" }
        } catch {
            // A short message: URLs can carry secrets.
            failure = "the endpoint could not be reached"
        }
        let attempts = d.attempts + 1
        let ok = failure == nil
        metrics.webhook(ok ? "delivered" : (attempts >= Self.maxAttempts ? "failed" : "retry"))
        let status: DeliveryStatus = ok ? .delivered : (attempts >= Self.maxAttempts ? .failed : .pending)
        let next = ok ? now : now + Self.backoffMs(attempts: attempts - 1)
        let (code, message) = (httpStatus, failure)
        do {
            try await state.db.write { conn in
                try conn.recordDelivery(
                    id: d.id, status: status, attempts: attempts, nextAttemptAt: next, httpStatus: code, error: message, deliveredAt: ok ? now : nil)
            }
        } catch {
            state.logger.error("could not record a delivery", metadata: ["error": "\(error)"])
        }
    }
}
