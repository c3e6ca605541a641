import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Turns every error into a clear answer: problem+json on the admin API, the provider's own error
/// shape on the data plane. Adds `x-request-id` to every response. Nothing escapes as a bare 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = Self.response(for: error, request: request, context: context)
        }
        response.headers[.requestId] = context.requestId
        return response
    }

    static func response(for error: any Error, request: Request, context: Context) -> Response {
        let path = request.uri.path
        if path.hasPrefix("/v1/") || path == "/v1" {
            let format: WireFormat = path.hasPrefix("/v1/messages") ? .anthropic : .openai
            let refusal: Refusal
            switch error {
            case let r as Refusal: refusal = r
            case let p as ProblemError: refusal = Refusal(.invalidRequest, p.detail, status: Int(p.status.code))
            case is NIOTooManyBytesError: refusal = Refusal(.requestTooLarge, "the request body is too large")
            case let e as HTTPError where e.status == .notFound:
                refusal = Refusal(.invalidRequest, "unknown endpoint \(request.method) \(path.prefix(100))", status: 404)
            case let e as HTTPError: refusal = Refusal(.invalidRequest, e.body ?? e.status.reasonPhrase, status: Int(e.status.code))
            default:
                context.logger.error("data plane error", metadata: ["error": "\(String(describing: type(of: error)))"])
                refusal = Refusal(.upstreamError, "internal error; quote request id \(context.requestId)", status: 500)
            }
            return refusal.response(format: format)
        }
        switch error {
        case let p as ProblemError: return p.response()
        case is NIOTooManyBytesError: return ProblemError.tooLarge(1 << 20).response()
        case let e as HTTPError where e.status == .notFound:
            return ProblemError.notFound("route \(request.method) \(path.prefix(200))").response()
        case let e as HTTPError:
            return ProblemError(e.status, code: "http_error", e.body ?? e.status.reasonPhrase).response()
        case let f as FieldError: return ProblemError.invalid(f).response()
        default:
            context.logger.error("admin API error", metadata: ["error": "\(error)"])
            return ProblemError(.internalServerError, code: "internal", "internal error; quote request id \(context.requestId)").response()
        }
    }
}

extension HTTPField.Name {
    static let requestId = HTTPField.Name("x-request-id")!
    static let retryAfter = HTTPField.Name("retry-after")!
}
