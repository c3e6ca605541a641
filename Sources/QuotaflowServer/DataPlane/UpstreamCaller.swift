import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import Synchronization

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
    ///
    /// It uses the client's delegate API, the only one that takes an event loop per request: the
    /// answer's callbacks and the waiting handler stay on the loop the client's request arrived on
    /// (and the connection too whenever the pool has one idle there), with no task of the client's
    /// own in between (its async API starts one per request on the global pool, a thread wake-up
    /// each). `.delegate(on:)`, not `.delegateAndChannel(on:)`: requiring the connection's loop
    /// makes the pool open a new connection whenever none is idle on that loop, which under load
    /// measured 40% fewer requests per second (bench/RESULTS.md).
    func fetch(
        _ upstreamCall: UpstreamCall, resource: RoutableResource, body: [UInt8], channel: any Channel, timeoutMs: Int64, totalMs: Int64,
        limit: Int
    )
        async throws(UpstreamFailure) -> UpstreamAnswer
    {
        let collector = AnswerCollector(limit: limit)
        do {
            let http = try await clients.client(for: resource.target, checked: resource.egressChecked, use: .whole)
            let request = try HTTPClient.Request(
                url: upstreamCall.url, method: upstreamCall.method, headers: upstreamCall.headers,
                body: upstreamCall.sendsBody ? .byteBuffer(ByteBuffer(bytes: body)) : nil)
            // The first-byte limit ends when the head comes (as the async API's deadline did); the
            // client's deadline bounds the whole call, body included.
            let task = http.execute(
                request: request, delegate: collector, eventLoop: .delegate(on: channel.eventLoop),
                deadline: .now() + .milliseconds(max(totalMs, timeoutMs)), logger: logger)
            collector.limitFirstByte(
                channel.eventLoop.scheduleTask(in: .milliseconds(timeoutMs)) { task.fail(reason: HTTPClientError.deadlineExceeded) })
            connections.watch(channel) { task.cancel() }
            defer { connections.unwatch(channel) }
            return try await withTaskCancellationHandler {
                do {
                    return try await task.futureResult.get()
                } catch {
                    // The head came: the upstream answered, and only its body failed.
                    if let answer = collector.partial(error) { return answer }
                    throw error
                }
            } onCancel: {
                task.cancel()
            }
        } catch {
            throw UpstreamFailure(error)
        }
    }

    /// Runs `work` in a task that is cancelled when the client's connection goes away.
    func watched<T: Sendable>(_ channel: any Channel, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task(executorPreference: EventLoopExecutors.current) { try await work() }
        connections.watch(channel) { task.cancel() }
        defer { connections.unwatch(channel) }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}

/// Collects a whole upstream answer; its callbacks run on the connection's event loop.
final class AnswerCollector: HTTPClientResponseDelegate {
    typealias Response = UpstreamAnswer
    struct State {
        var head: HTTPResponseHead?
        var body = ByteBuffer()
        var tooLarge = false
        var firstByte: Scheduled<Void>?
    }
    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) { self.limit = limit }

    /// Cancels `timer` when the head arrives (at once if it already has).
    func limitFirstByte(_ timer: Scheduled<Void>) {
        let arrived = state.withLock { s -> Bool in
            if s.head == nil { s.firstByte = timer }
            return s.head != nil
        }
        if arrived { timer.cancel() }
    }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let timer = state.withLock { s -> Scheduled<Void>? in
            s.head = head
            defer { s.firstByte = nil }
            return s.firstByte
        }
        timer?.cancel()
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Response>, _ error: any Error) {
        state.withLock { $0.firstByte }?.cancel()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let limit = self.limit
        let over = state.withLock { s -> Bool in
            var buffer = buffer
            if s.body.readableBytes + buffer.readableBytes > limit {
                s.tooLarge = true
                return true
            }
            s.body.writeBuffer(&buffer)
            return false
        }
        if over { task.fail(reason: NIOTooManyBytesError(maxBytes: limit)) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        try state.withLock { s in
            guard let head = s.head else { throw HTTPClientError.remoteConnectionClosed }
            // Never a cut answer: a body over the limit failed the task, and this is not reached.
            if s.tooLarge { throw NIOTooManyBytesError(maxBytes: limit) }
            return UpstreamAnswer(status: head.status.code, headers: head.headers, body: s.body)
        }
    }

    /// The answer so far when its body failed after the head, with why; `nil` without a head.
    func partial(_ error: any Error) -> UpstreamAnswer? {
        let limit = self.limit
        return state.withLock { s -> UpstreamAnswer? in
            guard let head = s.head else { return nil }
            let why: any Error = s.tooLarge ? NIOTooManyBytesError(maxBytes: limit) : error
            return UpstreamAnswer(status: head.status.code, headers: head.headers, body: nil, bodyError: why)
        }
    }
}
