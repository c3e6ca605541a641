import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore
import Synchronization

/// The console's way into the admin API: it calls the very same routes, in process, as the signed-in
/// admin. Validation, tenant scoping, the viewer rule and the audit actor are the API's own, so the
/// console can do exactly what the admin API lets that key do, and no more.
struct AdminDispatch: Sendable {
    let responder: RouterResponder<AppRequestContext>

    /// One admin call. A refusal is thrown as the API's `ProblemError` (a 4xx names its field).
    func call(
        _ method: HTTPRequest.Method, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil, as identity: AdminIdentity,
        context: AppRequestContext
    ) async throws -> JSONValue {
        let response = try await raw(method, path, query: query, body: body, as: identity, context: context)
        let buffer = try await Self.collect(response.body)
        guard buffer.readableBytes > 0 else { return .null }
        return try buffer.withUnsafeReadableBytes { try JSONParser.parse(buffer: $0) }
    }

    /// One admin call whose answer the console passes on as it is (a CSV download).
    func raw(
        _ method: HTTPRequest.Method, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil, as identity: AdminIdentity,
        context: AppRequestContext
    ) async throws -> Response {
        var target = "/admin/v1" + path
        if !query.isEmpty { target += "?" + Self.encode(query) }
        var head = HTTPRequest(method: method, scheme: "http", authority: "console", path: target)
        var bytes = ByteBuffer()
        if let body {
            head.headerFields[.contentType] = "application/json"
            bytes = ByteBuffer(bytes: JSONWriter.bytes(body))
        }
        var inner = AppRequestContext(source: ApplicationRequestContextSource(channel: context.channel, logger: context.logger))
        inner.identity = identity
        do {
            return try await responder.respond(to: Request(head: head, body: RequestBody(buffer: bytes)), context: inner)
        } catch {
            guard let problem = ErrorMiddleware.problem(for: error, path: target, method: method) else { throw error }
            throw problem
        }
    }

    /// A path segment made safe: an id from a console URL can never reach another route.
    static func segment(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? ""
    }

    static func encode(_ query: [(String, String)]) -> String {
        query.map { "\(segment($0.0))=\(segment($0.1))" }.joined(separator: "&")
    }

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    static func collect(_ body: ResponseBody) async throws -> ByteBuffer {
        let sink = Sink()
        try await body.write(CollectingWriter(sink: sink))
        return sink.buffer.withLock { $0 }
    }

    final class Sink: Sendable {
        let buffer = Mutex(ByteBuffer())
    }

    struct CollectingWriter: ResponseBodyWriter {
        let sink: Sink
        mutating func write(_ buffer: ByteBuffer) async throws {
            var buffer = buffer
            _ = sink.buffer.withLock { $0.writeBuffer(&buffer) }
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}

/// Admin routes reached only in process: the caller has already said who acts (a console session).
/// The viewer rule is the same as on the public API.
struct PresetIdentityMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let identity = context.identity else { throw ProblemError.unauthorized }
        try AdminAuthMiddleware.checkScope(identity, method: request.method)
        return try await next(request, context)
    }
}
