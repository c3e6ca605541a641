import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore

/// An admin API error, answered as `application/problem+json` (RFC 9457).
public struct ProblemError: Error, Sendable {
    public let status: HTTPResponse.Status
    /// A stable machine-readable code: `validation_failed`, `not_found`, `conflict`, ...
    public let code: String
    public let detail: String
    public let field: String?
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, _ detail: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
    }

    public static func badRequest(_ detail: String) -> ProblemError { .init(.badRequest, code: "malformed_request", detail) }
    public static func invalid(_ e: FieldError) -> ProblemError {
        .init(.unprocessableContent, code: "validation_failed", "\(e.field): \(e.message)", field: e.field)
    }
    public static func invalid(_ field: String, _ message: String) -> ProblemError { invalid(FieldError(field, message)) }
    public static func notFound(_ what: String) -> ProblemError { .init(.notFound, code: "not_found", "\(what) was not found") }
    public static func conflict(_ detail: String) -> ProblemError { .init(.conflict, code: "conflict", detail) }
    public static let unauthorized = ProblemError(
        .unauthorized, code: "unauthorized", "send an operator token or a tenant admin key as 'Authorization: Bearer <key>'")
    public static func forbidden(_ detail: String) -> ProblemError { .init(.forbidden, code: "forbidden", detail) }
    public static func tooLarge(_ limit: Int) -> ProblemError {
        .init(.contentTooLarge, code: "body_too_large", "the request body is larger than the limit of \(limit) bytes")
    }

    func body() -> JSONValue {
        .compact([
            ("type", .string("urn:quotaflow:problem:\(code)")), ("title", .string(status.reasonPhrase)), ("status", .int(Int64(status.code))),
            ("code", .string(code)), ("detail", .string(detail)), ("field", field.map(JSONValue.string)),
        ])
    }

    public func response() -> Response {
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(body()))))
    }
}

/// Helpers for JSON responses.
public enum JSONResponse {
    public static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(value))))
    }

    public static func list(_ items: [JSONValue], nextCursor: String? = nil) -> Response {
        make(.compact([("data", .array(items)), ("next_cursor", .string(nextCursor))]))
    }
}

extension Request {
    /// Collects and parses a JSON body: 413 over the limit, 400 when it is not JSON or not an object.
    func jsonObject(limit: Int, timeoutMs: Int64) async throws -> ObjectReader {
        let buffer = try await collectAdminBody(limit: limit, timeoutMs: timeoutMs)
        guard buffer.readableBytes > 0 else { throw ProblemError.badRequest("the request body is empty; send a JSON object") }
        let value: JSONValue
        do {
            value = try buffer.withUnsafeReadableBytes { try JSONParser.parse(buffer: $0) }
        } catch let e as JSONSyntaxError {
            throw ProblemError.badRequest("the body is not valid JSON: \(e.description)")
        }
        guard case .object = value else { throw ProblemError.badRequest("the body must be a JSON object, got \(value.kindName)") }
        return try ObjectReader(value)
    }
}

extension Request {
    /// The body for the admin API: 413 over the limit, 408 when it takes too long to arrive.
    func collectAdminBody(limit: Int, timeoutMs: Int64) async throws -> ByteBuffer {
        do {
            return try await BodyReader.read(self, limit: limit, timeoutMs: timeoutMs)
        } catch .tooLarge {
            throw ProblemError.tooLarge(limit)
        } catch .tooSlow(let ms) {
            throw ProblemError(.requestTimeout, code: "body_timeout", "the request body did not arrive within \(ms) ms")
        } catch .malformed(let why) {
            throw ProblemError.badRequest(why)
        }
    }
}

/// Runs a decoding step and turns field errors into 422 answers.
func validating<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as FieldError {
        throw ProblemError.invalid(e)
    }
}
