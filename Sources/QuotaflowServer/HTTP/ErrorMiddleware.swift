import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// Turns every error into a clear answer: problem+json on the admin API, the provider's own error
/// shape on the data plane. Adds `x-request-id` to every response. Nothing escapes as a bare 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    /// The route table, to answer 405 (with `Allow`) for a known path called with the wrong method.
    let routes: RouteIndex

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound && e.body == nil {
            let allowed = routes.methods(for: request.uri.path)
            if allowed.isEmpty {
                response = Self.response(for: e, request: request, context: context)
            } else {
                let list = allowed.map(\.rawValue).sorted().joined(separator: ", ")
                let message = "\(request.method) is not allowed on \(request.uri.path.prefix(200)); use \(list)"
                response = Self.response(for: HTTPError(.methodNotAllowed, message: message), request: request, context: context)
                response.headers[.allow] = list
            }
        } catch {
            response = Self.response(for: error, request: request, context: context)
        }
        response.headers[.requestId] = context.requestId
        return response
    }

    /// Data-plane handlers answer their own errors in their dialect (`DataPlaneController.answer`).
    /// What reaches this middleware is an admin error, or a request no route matched: under `/v1`,
    /// the provider namespace, that one answers like the OpenAI API (or Anthropic's under
    /// `/v1/messages`, Google's under `/v1beta`), since no handler chose a dialect.
    static func response(for error: any Error, request: Request, context: Context) -> Response {
        let path = request.uri.path
        if path.hasPrefix("/v1/") || path == "/v1" || path.hasPrefix("/v1beta/"), let e = error as? HTTPError {
            let dialect: any Dialect
            if path.hasPrefix("/v1/messages") {
                dialect = Messages()
            } else if path.hasPrefix("/v1beta/") {
                dialect = Gemini(method: .generate, model: "")
            } else {
                dialect = ChatCompletions()
            }
            let message = e.status == .notFound ? "unknown endpoint \(request.method) \(path.prefix(100))" : e.body ?? e.status.reasonPhrase
            return dialect.response(for: Refusal(.invalidRequest, message, status: Int(e.status.code)))
        }
        if let problem = problem(for: error, path: path, method: request.method) { return problem.response() }
        context.logger.error("admin API error", metadata: ["error": "\(error)"])
        return ProblemError(.internalServerError, code: "internal", "internal error; quote request id \(context.requestId)").response()
    }

    /// The problem an admin error answers with; nil for an unexpected error (a 500).
    static func problem(for error: any Error, path: String, method: HTTPRequest.Method) -> ProblemError? {
        switch error {
        case let p as ProblemError: return p
        case is NIOTooManyBytesError: return ProblemError.tooLarge(1 << 20)
        case is DuplicateName: return ProblemError.conflict("an object with that name already exists; choose another name")
        case let e as HTTPError where e.status == .notFound: return ProblemError.notFound("route \(method) \(path.prefix(200))")
        case let e as HTTPError: return ProblemError(e.status, code: "http_error", e.body ?? e.status.reasonPhrase)
        case let f as FieldError: return ProblemError.invalid(f)
        default: return nil
        }
    }
}

extension HTTPField.Name {
    static let requestId = HTTPField.Name("x-request-id")!
    static let retryAfter = HTTPField.Name("retry-after")!
}

/// The registered routes by path pattern, filled once the router is built.
final class RouteIndex: Sendable {
    let patterns = Mutex<[(segments: [Substring], method: HTTPRequest.Method)]>([])

    func load(_ routes: [(path: String, method: HTTPRequest.Method)]) {
        patterns.withLock { p in p = routes.map { (Self.segments($0.path), $0.method) } }
    }

    static func segments(_ path: String) -> [Substring] { path.split(separator: "/") }

    /// The methods registered for `path`, matching `{parameter}` segments to anything.
    func methods(for path: String) -> Set<HTTPRequest.Method> {
        let parts = Self.segments(path)
        return patterns.withLock { p in
            var out = Set<HTTPRequest.Method>()
            for (segments, method) in p where segments.count == parts.count {
                if zip(segments, parts).allSatisfy({ $0.0.hasPrefix("{") || $0.0.hasPrefix(":") || $0.0 == $0.1 }) { out.insert(method) }
            }
            return out
        }
    }
}
