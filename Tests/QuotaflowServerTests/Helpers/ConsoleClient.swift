import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuotaflowCore
import Testing

/// A browser stand-in for the console: a cookie jar, no redirect following, form posts.
final class ConsoleClient: @unchecked Sendable {
    static let http: HTTPClient = {
        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }()

    let server: TestServer
    var cookies: [String: String] = [:]
    /// The last page's CSRF token (from its sign-out form).
    var csrf = ""

    init(_ server: TestServer) { self.server = server }

    func request(
        _ method: HTTPMethod, _ path: String, form: [(String, String)]? = nil, headers: [(String, String)] = []
    ) async throws
        -> TestResponse
    {
        var request = HTTPClientRequest(url: server.base + path)
        request.method = method
        if !cookies.isEmpty { request.headers.add(name: "cookie", value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")) }
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let form {
            request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: Self.encode(form)))
        }
        let response = try await Self.http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let r = TestResponse(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
        for line in response.headers["set-cookie"] {
            let pair = line.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0])
            let value = pair.count > 1 ? String(pair[1]) : ""
            if value.isEmpty || line.contains("Max-Age=0") { cookies.removeValue(forKey: name) } else { cookies[name] = value }
        }
        if let token = Self.field("csrf", in: r.text) { csrf = token }
        return r
    }

    func get(_ path: String) async throws -> TestResponse { try await request(.GET, path) }

    /// A form post carrying the session's CSRF token.
    func post(_ path: String, _ form: [(String, String)] = [], headers: [(String, String)] = []) async throws -> TestResponse {
        try await request(.POST, path, form: [("csrf", csrf)] + form, headers: headers)
    }

    /// Signs in with a key; returns the answer to the sign-in post.
    @discardableResult
    func signIn(_ key: String) async throws -> TestResponse {
        _ = try await get("/console/login")
        return try await request(.POST, "/console/login", form: [("csrf", csrf), ("key", key)])
    }

    /// The value of the first hidden input with this name.
    static func field(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        let rest = html[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    static func encode(_ form: [(String, String)]) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return form.map {
            "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed)!)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)"
        }
        .joined(separator: "&")
    }
}
