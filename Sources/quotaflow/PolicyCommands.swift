import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowPolicyFile

/// How the policy commands reach the running server: they are its clients, never its database.
struct ServerOptions: ParsableArguments {
    @Option(help: "The server's URL (env: QUOTAFLOW_URL; default http://127.0.0.1:8080).")
    var server: String?
    @Option(help: "Tenant id, or its name (looked up with the operator token; env: QUOTAFLOW_TENANT). Default: the file's tenant.")
    var tenant: String?

    @Option(
        help: "An admin token: the operator token or the tenant's admin key (env: QUOTAFLOW_ADMIN_TOKEN, preferred: a flag shows in process lists).")
    var token: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }
    var base: String { (server ?? environment["QUOTAFLOW_URL"] ?? "http://127.0.0.1:8080").trimmingSuffix("/") + "/admin/v1" }

    func adminToken() throws -> String {
        guard let t = token ?? environment["QUOTAFLOW_ADMIN_TOKEN"], !t.isEmpty else {
            throw ValidationError("set QUOTAFLOW_ADMIN_TOKEN (or --token) to the operator token or the tenant's admin key")
        }
        return t
    }

    func call(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> (status: Int, json: JSONValue) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(try adminToken())")
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(body)))
        }
        let response: HTTPClientResponse
        do { response = try await HTTPClient.shared.execute(request, timeout: .seconds(600)) } catch {
            throw ValidationError("cannot reach the server at \(base): \(error)")
        }
        let bytes = try await response.body.collect(upTo: 256 << 20)
        let json = (try? JSONParser.parse(Array(bytes.readableBytesView))) ?? .null
        return (Int(response.status.code), json)
    }

    /// The tenant's id: given, or found by name among the tenants the token may list.
    func tenantId(fileTenant: String?) async throws -> String {
        guard let wanted = tenant ?? environment["QUOTAFLOW_TENANT"] ?? fileTenant else {
            throw ValidationError("name the tenant: --tenant, QUOTAFLOW_TENANT, or 'tenant:' in the file")
        }
        if wanted.hasPrefix("ten_") { return wanted }
        let (status, json) = try await call(.GET, "/tenants")
        guard status == 200 else {
            throw ValidationError("cannot look up tenant '\(wanted)' (\(status)): pass its id with --tenant, which a tenant admin key needs")
        }
        guard let match = json["data"]?.arrayValue?.first(where: { $0["name"]?.stringValue == wanted }), let id = match["id"]?.stringValue else {
            throw ValidationError("no tenant named '\(wanted)'")
        }
        return id
    }
}

struct PolicyFailure: Error, CustomStringConvertible {
    let description: String
}

/// Reads the file, resolves its secret references here, and sends the document to the server.
func sendPolicy(file path: String, options: ServerOptions, dryRun: Bool, prune: Bool) async throws -> (PolicyFile, JSONValue) {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw ValidationError("cannot read \(path): \(error.localizedDescription)")
    }
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    let secrets = SecretSource(environment: options.environment) { file in
        let resolved = file.hasPrefix("/") ? file : directory + "/" + file
        return try String(contentsOfFile: resolved, encoding: .utf8)
    }
    let policy = try PolicyFile.read(text, file: path, secrets: secrets)
    let tenantId = try await options.tenantId(fileTenant: policy.tenant)
    let body: JSONValue = .object([
        ("policy", policy.document), ("dry_run", .bool(dryRun)), ("prune", .bool(prune)),
        ("source", .object([("file", .string(URL(fileURLWithPath: path).lastPathComponent)), ("digest", .string(policy.digest))])),
    ])
    let (status, json) = try await options.call(.POST, "/tenants/\(tenantId)/policy", body)
    guard (200..<300).contains(status) else {
        let detail = json["detail"]?.stringValue ?? "the server answered \(status)"
        if status == 422, let field = json["field"]?.stringValue {
            let message = detail.hasPrefix(field + ": ") ? String(detail.dropFirst(field.count + 2)) : detail
            throw PolicyFailure(description: policy.error(field: field, message: message).description)
        }
        throw PolicyFailure(description: "\(path): \(detail)")
    }
    return (policy, json)
}

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what applying a policy file would change (nothing is changed).",
        discussion:
            "Secrets in the file (${VAR}, credential_file:) are resolved on this machine and sent to the server, which compares keyed digests.")

    @Option(name: .shortAndLong, help: "The policy file (YAML, one tenant).")
    var file: String
    @Flag(help: "Also retire what the file does not name (archive projects; revoke keys, seats and resources).")
    var prune = false
    @OptionGroup var server: ServerOptions

    func run() async throws {
        do {
            let (_, plan) = try await sendPolicy(file: file, options: server, dryRun: true, prune: prune)
            print(PolicyPlanText.render(plan))
        } catch let e as PolicyFileError {
            throw PolicyFailure(description: e.description)
        }
    }
}

struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a policy file in one transaction (all or nothing); a second apply plans no changes.")

    @Option(name: .shortAndLong, help: "The policy file (YAML, one tenant).")
    var file: String
    @Flag(help: "Also retire what the file does not name (archive projects; revoke keys, seats and resources).")
    var prune = false
    @Option(name: .customLong("keys-out"), help: "Write newly issued keys here (mode 0600) instead of standard output. They are shown once.")
    var keysOut: String?
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let result: JSONValue
        do {
            (_, result) = try await sendPolicy(file: file, options: server, dryRun: false, prune: prune)
        } catch let e as PolicyFileError {
            throw PolicyFailure(description: e.description)
        }
        print(PolicyPlanText.render(result))
        print(result["applied"] == .bool(true) ? "Applied." : "Nothing to apply.")
        let issued = result["issued"]?.arrayValue ?? []
        guard !issued.isEmpty else { return }
        let lines = issued.map { JSONWriter.string($0) }.joined(separator: "\n") + "\n"
        if let keysOut {
            _ = FileManager.default.createFile(atPath: keysOut, contents: nil, attributes: [.posixPermissions: 0o600])
            guard let handle = FileHandle(forWritingAtPath: keysOut) else { throw ValidationError("cannot write \(keysOut)") }
            try handle.write(contentsOf: Data(lines.utf8))
            try handle.close()
            print("\(issued.count) issued key(s) written to \(keysOut) (shown once; the server keeps digests only).")
        } else {
            print("Issued keys, shown once (the server keeps digests only):")
            print(lines, terminator: "")
        }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a tenant's current policy as a policy file, with every secret as a ${VAR} reference.")

    @Option(name: .shortAndLong, help: "Write the file here instead of standard output.")
    var output: String?
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let tenantId = try await server.tenantId(fileTenant: nil)
        let (status, json) = try await server.call(.GET, "/tenants/\(tenantId)/policy")
        guard status == 200, let document = json["policy"] else {
            throw PolicyFailure(description: json["detail"]?.stringValue ?? "the server answered \(status)")
        }
        let (text, variables) = PolicyExport.yaml(document)
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } else {
            print(text, terminator: "")
        }
        if !variables.isEmpty {
            FileHandle.standardError.write(Data("set these before plan or apply: \(variables.joined(separator: " "))\n".utf8))
        }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
