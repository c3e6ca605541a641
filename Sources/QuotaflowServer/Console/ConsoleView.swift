import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import QuotaflowCore

/// The console's templates and static files, shipped in the server's resource bundle (beside the
/// binary, as the migrations are), read once at start.
struct ConsoleView: Sendable {
    struct Asset: Sendable {
        let contentType: String
        let bytes: ByteBuffer
        let etag: String
    }

    let library: MustacheLibrary
    let assets: [String: Asset]

    /// Reads `templates/` and `static/` from the bundle's `Assets`.
    init() throws {
        guard let root = Self.bundledAssets() else { throw Self.missing }
        let fm = FileManager.default
        var library = MustacheLibrary()
        let templates = root.appendingPathComponent("templates")
        let names = (try? fm.contentsOfDirectory(atPath: templates.path)) ?? []
        for name in names.sorted() where name.hasSuffix(".mustache") {
            let text = try String(contentsOf: templates.appendingPathComponent(name), encoding: .utf8)
            try library.register(text, named: String(name.dropLast(".mustache".count)))
        }
        guard library.getTemplate(named: "layout") != nil else {
            throw StartupError("the console's templates are missing at \(templates.path); ship quotaflow_QuotaflowServer.resources beside the binary")
        }
        var assets: [String: Asset] = [:]
        let statics = root.appendingPathComponent("static")
        for name in ((try? fm.contentsOfDirectory(atPath: statics.path)) ?? []).sorted() {
            let data = try Data(contentsOf: statics.appendingPathComponent(name))
            let type: String
            switch (name as NSString).pathExtension {
            case "css": type = "text/css; charset=utf-8"
            case "js": type = "text/javascript; charset=utf-8"
            case "svg": type = "image/svg+xml"
            case "png": type = "image/png"
            default: type = "application/octet-stream"
            }
            let etag = "\"" + String(SecretDigest.of(String(decoding: data, as: UTF8.self)).prefix(16)) + "\""
            assets[name] = Asset(contentType: type, bytes: ByteBuffer(bytes: data), etag: etag)
        }
        self.library = library
        self.assets = assets
    }

    static let missing = StartupError("the console's files are missing: ship the quotaflow_QuotaflowServer.resources folder beside the binary")

    /// `Assets` in the resource bundle beside the binary (where `swift build`, `swift run`, `swift test` and the
    /// container image put it). Looked up here rather than through `Bundle.module`, whose accessor stops the
    /// process when the bundle is missing; this way a missing bundle is a clear startup error.
    static func bundledAssets() -> URL? {
        let name = "quotaflow_QuotaflowServer.resources"
        let places = [Bundle.main.bundleURL, Bundle.main.executableURL?.deletingLastPathComponent()].compactMap { $0 }
        for place in places {
            let assets = place.appendingPathComponent(name).appendingPathComponent("Assets")
            if FileManager.default.fileExists(atPath: assets.appendingPathComponent("templates").path) { return assets }
        }
        return nil
    }

    /// A whole page: the layout around `template`, with the session's navigation.
    func page(
        _ template: String, title: String, session: ConsoleSession?, tenantName: String? = nil, data: [String: Any] = [:],
        status: HTTPResponse.Status = .ok
    ) -> Response {
        var context = data
        context["title"] = title
        context["nav_" + template] = true
        if let session {
            context["session"] =
                [
                    "actor": session.label,
                    "viewer": session.identity.isViewer, "operator": session.identity.isOperator, "tenant": tenantName ?? session.tenantId ?? "",
                    "has_tenant": session.tenantId != nil,
                ] as [String: Any]
            context["csrf"] = session.csrf
            context["can_write"] = session.canWrite
        }
        return Self.html(render(template, context), status: status)
    }

    /// A template without the layout (the overview's live part is one).
    func render(_ template: String, _ data: [String: Any]) -> String { library.render(data, withTemplate: template) ?? "" }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func asset(_ name: String, request: Request) throws -> Response {
        guard let a = assets[name] else { throw ProblemError.notFound("file '\(name.prefix(60))'") }
        if request.headers[.ifNoneMatch] == a.etag {
            return Response(status: .notModified, headers: [.eTag: a.etag])
        }
        return Response(
            status: .ok, headers: [.contentType: a.contentType, .eTag: a.etag, .cacheControl: "no-cache"], body: .init(byteBuffer: a.bytes))
    }
}

/// JSON from the admin API as template data. Amounts (`…_micros`) also appear in dollars
/// (`…_usd`) and times (`…_at`, `from`, `to`, `period_…`) as `…_text`, so templates show what
/// people read.
enum TemplateData {
    static func from(_ value: JSONValue) -> Any? {
        switch value {
        case .null: return nil
        case .bool(let b): return b
        case .int(let i): return i
        case .double(let d): return d
        case .string(let s): return s
        case .array(let items): return items.compactMap(from)
        case .object(let members):
            var out: [String: Any] = [:]
            for (key, v) in members {
                guard let converted = from(v) else { continue }
                out[key] = converted
                if key.hasSuffix("_micros"), case .int(let micros) = v {
                    out[String(key.dropLast("_micros".count)) + "_usd"] = ConsoleText.display(micros)
                } else if key == "utilization", case .double(let d) = v {
                    out["utilization_percent"] = Int((d * 100).rounded())
                } else if case .string(let s) = v, let ms = Timestamp.parse(s), s.count >= 20 {
                    out[key + "_text"] = ConsoleText.time(ms)
                }
            }
            return out
        }
    }

    static func list(_ value: JSONValue, _ key: String = "data") -> [[String: Any]] {
        (from(value[key] ?? .array([])) as? [Any] ?? []).compactMap { $0 as? [String: Any] }
    }

    static func object(_ value: JSONValue) -> [String: Any] { from(value) as? [String: Any] ?? [:] }
}

/// How the console writes amounts and times.
enum ConsoleText {
    /// `$1,234.56`; amounts under a cent keep their digits (`$0.000150`).
    static func display(_ micros: Int64) -> String {
        let negative = micros < 0
        let m = micros.magnitude
        if m != 0 && m < 10_000 { return (negative ? "-$" : "$") + DecimalUSD.text(Int64(m)) }
        let cents = (m + 5_000) / 10_000
        var whole = String(cents / 100)
        var groups: [String] = []
        while whole.count > 3 {
            groups.insert(String(whole.suffix(3)), at: 0)
            whole.removeLast(3)
        }
        groups.insert(whole, at: 0)
        let fraction = cents % 100
        return (negative ? "-$" : "$") + groups.joined(separator: ",") + "." + (fraction < 10 ? "0" : "") + String(fraction)
    }

    /// `2026-12-01 14:05 UTC`.
    static func time(_ ms: Int64) -> String {
        let text = Timestamp.format(ms)
        guard text.count >= 16 else { return text }
        return text.prefix(10) + " " + text.dropFirst(11).prefix(5) + " UTC"
    }
}
