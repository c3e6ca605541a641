import HTTPTypes
import Hummingbird
import Logging
import QuotaflowCore

/// Every console answer gets a strict policy (no inline script or style, no framing, nothing from
/// another origin) and errors become a readable page with the same status the API would give.
struct ConsoleMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let view: ConsoleView

    static let policy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; "
        + "frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let r as ConsoleRedirect {
            response = Response.redirect(to: r.to, type: .normal)
        } catch {
            let path = request.uri.path
            if let problem = ErrorMiddleware.problem(for: error, path: path, method: request.method) {
                response = view.page(
                    "error", title: problem.status.reasonPhrase, session: nil,
                    data: ["status": Int(problem.status.code), "reason": problem.status.reasonPhrase, "detail": problem.detail],
                    status: problem.status)
            } else {
                context.logger.error("console error", metadata: ["error": "\(error)"])
                response = view.page(
                    "error", title: "Error", session: nil,
                    data: ["status": 500, "reason": "Internal error", "detail": "Something went wrong; quote request id \(context.requestId)."],
                    status: .internalServerError)
            }
        }
        response.headers[.contentSecurityPolicy] = Self.policy
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "same-origin"
        return response
    }
}

extension HTTPField.Name {
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
