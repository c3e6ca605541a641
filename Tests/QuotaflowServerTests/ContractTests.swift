import Foundation
import Hummingbird
import QuotaflowCore
import Testing

@testable import QuotaflowServer

/// `openapi.yaml` stays true: every route is in the spec and every spec operation is a route.
@Suite(.scoped) struct ContractTests {
    static var specPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("openapi.yaml").path
    }

    /// `METHOD /path` for each operation, read from the spec's `paths` section.
    static func specOperations() throws -> Set<String> {
        let text = try String(contentsOfFile: specPath, encoding: .utf8)
        var ops = Set<String>()
        var inPaths = false
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" {
                inPaths = true
                continue
            }
            if inPaths, !line.isEmpty, !line.hasPrefix(" ") { break }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                current = String(line.dropFirst(2).dropLast())
            } else if let path = current, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let key = line.trimmingCharacters(in: .whitespaces).split(separator: ":").first.map(String.init) ?? ""
                if ["get", "post", "put", "patch", "delete"].contains(key) { ops.insert("\(key.uppercased()) \(path)") }
            }
        }
        return ops
    }

    /// The import rules of ARCHITECTURE.md: each module imports only what its paragraph allows.
    @Test func modulesImportOnlyWhatTheArchitectureAllows() throws {
        let root = URL(fileURLWithPath: Self.specPath).deletingLastPathComponent()
        let allowed: [String: Set<String>] = [
            "QuotaflowCore": ["Foundation", "Glibc", "Darwin", "Crypto", "Synchronization", "HashTreeCollections", "HeapModule"],
            "QuotaflowStore": [
                "QuotaflowCore", "CSQLite", "Logging", "NIOPosix", "Foundation", "Glibc", "Darwin", "Synchronization", "HashTreeCollections",
                "NIOCore", "PostgresNIO", "NIOSSL",
            ],
        ]
        var checked = 0
        for (module, permitted) in allowed {
            let dir = root.appendingPathComponent("Sources/\(module)")
            let files = FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
            for file in files {
                let text = try String(contentsOfFile: dir.appendingPathComponent(file).path, encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                    let imported = String(line.split(separator: " ").last ?? "")
                    #expect(permitted.contains(imported), "\(module)/\(file) imports \(imported)")
                    checked += 1
                }
            }
        }
        #expect(checked > 20)
    }

    @Test func theReadmeDocumentsEverySetting() throws {
        let readme = try String(
            contentsOfFile: URL(fileURLWithPath: Self.specPath).deletingLastPathComponent().appendingPathComponent("README.md").path, encoding: .utf8)
        for spec in Settings.all {
            // The README's default column is held to the one table of defaults (`AppConfig`).
            let shown = spec.defaultValue.isEmpty ? "—" : "`\(spec.defaultValue)`"
            #expect(
                readme.contains("| `\(spec.name)` | `\(spec.environmentName)` | \(shown) |"), "README lacks the setting \(spec.name) with its default"
            )
        }
    }

    @Test func everyRouteIsInTheSpecAndBack() async throws {
        let server = try await TestServer.start { $0.verifierEnabled = false }
        let router = QuotaflowApp.buildRouter(gateway: server.gateway)
        // The console's HTML pages are not part of the API contract (ConsoleTests and Tests/browser cover them).
        let routes = Set(
            router.routes.filter { !$0.path.description.hasPrefix("/console") && !$0.path.description.hasPrefix("console") }.map { r -> String in
                var path = r.path.description
                if !path.hasPrefix("/") { path = "/" + path }
                return "\(r.method.rawValue) \(path)"
            })
        let spec = try Self.specOperations()
        #expect(routes.count > 70)
        #expect(routes.subtracting(spec).sorted() == [], "routes missing from openapi.yaml")
        #expect(spec.subtracting(routes).sorted() == [], "operations in openapi.yaml without a route")
    }
}
