import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Why an upstream call produced no answer head.
enum UpstreamFailure: Error, Sendable, Equatable {
    /// No head within the first-byte limit (or the connection attempt timed out).
    case timedOut
    /// The connection was refused, reset or could not be made.
    case connectionFailed
    /// The resource's address is refused by the egress policy.
    case egressDenied(String)
    /// The client went away, so the call was cancelled.
    case cancelled

    init(_ error: any Error) {
        switch error {
        case is CancellationError: self = .cancelled
        case let denied as UpstreamClients.Denied: self = .egressDenied(denied.description)
        case let e as HTTPClientError where e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout: self = .timedOut
        case let e as HTTPClientError where e == .cancelled: self = .cancelled
        default: self = .connectionFailed
        }
    }
}

/// The status, headers and (for non-streaming answers) body of an upstream response.
struct UpstreamAnswer: Sendable {
    let status: UInt
    var headers: HTTPHeaders
    var body: ByteBuffer?
    /// Why the body could not be read after the head arrived.
    var bodyError: (any Error)? = nil
}

/// Calls upstreams on behalf of a client, and stops when the client goes away: the call runs in a
/// task that a hook on the client's connection cancels, so the upstream slot is freed at once.
struct UpstreamCaller: Sendable {
    let clients: UpstreamClients
    let connections: ConnectionRegistry
    let logger: Logger

    /// Sends a streaming request and returns at the head. Throws `UpstreamFailure`.
    func stream(
        _ request: HTTPClientRequest, resource: RoutableResource, channel: any Channel, timeoutMs: Int64
    ) async throws(UpstreamFailure)
        -> HTTPClientResponse
    {
        do {
            let http = try await clients.client(for: resource.target, checked: resource.egressChecked, use: .streaming)
            let logger = self.logger
            return try await watched(channel) { try await http.execute(request, timeout: .milliseconds(timeoutMs), logger: logger) }
        } catch {
            throw UpstreamFailure(error)
        }
    }

    /// Sends a request and reads the whole answer. Throws `UpstreamFailure` only when no head
    /// arrived; a body that fails later comes back in `bodyError` (the upstream answered, and may
    /// have charged, so it is never retried elsewhere).
    func fetch(
        _ upstreamCall: UpstreamCall, resource: RoutableResource, body: [UInt8], channel: any Channel, timeoutMs: Int64, limit: Int
    )
        async throws(UpstreamFailure) -> UpstreamAnswer
    {
        var request = HTTPClientRequest(url: upstreamCall.url)
        request.method = upstreamCall.method
        request.headers = upstreamCall.headers
        if upstreamCall.sendsBody { request.body = .bytes(ByteBuffer(bytes: body)) }
        let call = request
        do {
            let http = try await clients.client(for: resource.target, checked: resource.egressChecked, use: .whole)
            let logger = self.logger
            return try await watched(channel) {
                let response = try await http.execute(call, timeout: .milliseconds(timeoutMs), logger: logger)
                do {
                    return UpstreamAnswer(status: response.status.code, headers: response.headers, body: try await response.body.collect(upTo: limit))
                } catch {
                    return UpstreamAnswer(status: response.status.code, headers: response.headers, body: nil, bodyError: error)
                }
            }
        } catch {
            throw UpstreamFailure(error)
        }
    }

    /// Runs `work` in a task that is cancelled when the client's connection goes away.
    func watched<T: Sendable>(_ channel: any Channel, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await work() }
        connections.watch(channel) { task.cancel() }
        defer { connections.unwatch(channel) }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}
