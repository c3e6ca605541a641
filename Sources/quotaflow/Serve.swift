import ArgumentParser
import Foundation
import Hummingbird
import Logging
import QuotaflowCore
import QuotaflowServer
import QuotaflowStore
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server: admin API, data plane and background workers.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let resolved = try options.resolve()
        let logger = LogSetup.bootstrap(level: resolved.logLevel, json: resolved.json)
        let state: AppState
        do {
            state = try QuotaflowApp.bootstrap(
                config: resolved.config, clock: SystemClock(), logger: logger, masterKey: resolved.masterKey,
                masterKeyFile: resolved.masterKeyFile, operatorToken: resolved.operatorToken, databasePassword: resolved.databasePassword,
                printOperatorToken: { token in
                    Output.line("Operator token (shown once; store it safely, only its digest is kept):\n  \(token)")
                })
        } catch {
            fail("\(error)")
        }
        let gateway = try QuotaflowApp.assemble(state: state)
        let app = QuotaflowApp.buildApplication(gateway: gateway) { channel in
            logger.notice("listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
        }
        try await QuotaflowApp.run(app, state: state, logger: logger)
    }
}

extension QuotaflowApp {
    /// Runs until SIGTERM or SIGINT, then drains in-flight requests (up to the grace period),
    /// flushes the ledger and the outbox, and returns.
    static func run(_ app: some ApplicationProtocol, state: AppState, logger: Logger) async throws {
        var config = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.maximumGracefulShutdownDuration = .milliseconds(state.config.shutdownGraceMs + 5_000)
        let group = ServiceGroup(configuration: config)
        try await group.run()
        logger.notice("stopped")
    }
}
