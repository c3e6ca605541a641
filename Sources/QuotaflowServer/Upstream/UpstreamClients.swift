import AsyncHTTPClient
import Logging
import NIOCore
import NIOPosix
import QuotaflowCore
import Synchronization

/// The HTTP clients that call upstreams, probes and webhooks, and the egress rule for tenant-set URLs.
///
/// The operator's own URLs (overflow offers, resources the operator created) go through the shared
/// clients. A tenant-set URL is checked against `EgressPolicy` after resolution: an IP literal
/// directly, a host name through clients pinned to the address that was checked (AsyncHTTPClient's
/// `dnsOverride`, which keeps the name for TLS), so a name that re-resolves to a forbidden address
/// between the check and the connection (DNS rebinding) cannot slip through. Names are resolved again
/// after `pinTTL`. No client follows redirects: a redirect could carry a credential header anywhere.
final class UpstreamClients: Sendable {
    enum Use {
        /// The answer is read whole; the read timeout is the first-byte limit.
        case whole
        /// A stream; the read timeout is the stall limit between chunks.
        case streaming
    }

    struct Denied: Error, CustomStringConvertible {
        let description: String
    }

    struct Pinned {
        let address: [UInt8]
        var expiresAt: Int64
        let whole: HTTPClient
        let streaming: HTTPClient
    }

    static let pinTTLMs: Int64 = 60_000

    let policy: EgressPolicy
    let resolver: any HostResolver
    let clock: any WallClock
    let connectTimeoutMs: Int64
    let wholeReadMs: Int64
    let streamReadMs: Int64
    let retireAfterMs: Int64
    let whole: HTTPClient
    let streaming: HTTPClient
    let pinned = Mutex<[String: Pinned]>([:])
    /// Clients of addresses no longer pinned, shut down once in-flight calls can have finished.
    let retired = Mutex<[(at: Int64, client: HTTPClient)]>([])

    init(config: AppConfig, resolver: any HostResolver, clock: any WallClock) {
        self.policy = EgressPolicy(allowPrivate: config.allowPrivateEgress)
        self.resolver = resolver
        self.clock = clock
        self.connectTimeoutMs = config.connectTimeoutMs
        self.wholeReadMs = max(config.firstByteTimeoutMs, config.stallTimeoutMs)
        self.streamReadMs = config.stallTimeoutMs
        self.retireAfterMs = config.totalTimeoutMs + 60_000
        self.whole = Self.make(connectMs: config.connectTimeoutMs, readMs: wholeReadMs, dnsOverride: [:])
        self.streaming = Self.make(connectMs: config.connectTimeoutMs, readMs: streamReadMs, dnsOverride: [:])
    }

    static func make(connectMs: Int64, readMs: Int64, dnsOverride: [String: String]) -> HTTPClient {
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .milliseconds(connectMs), read: .milliseconds(readMs))
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        // Fail fast on a refused connection: the router retries on another resource itself.
        config.connectionPool.retryConnectionEstablishment = false
        config.decompression = .disabled
        config.redirectConfiguration = .disallow
        config.dnsOverride = dnsOverride
        // No spans: the default no-op tracer still costs a span and its attributes per call.
        config.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: config)
    }

    /// The client for a call to `target`. `checked` is false for the operator's own URLs.
    func client(for target: URLTarget?, checked: Bool, use: Use) async throws(Denied) -> HTTPClient {
        guard checked, let target else { return use == .whole ? whole : streaming }
        if let literal = target.literalAddress {
            if let why = policy.refusal(for: literal) { throw Denied(description: "\(target.host) is \(why)") }
            return use == .whole ? whole : streaming
        }
        let key = "\(target.host):\(target.port)"
        let now = clock.nowMs()
        if let p = pinned.withLock({ $0[key] }), p.expiresAt > now { return use == .whole ? p.whole : p.streaming }
        let addresses = try await check(host: target.host, port: target.port)
        let chosen: Pinned = pinned.withLock { map in
            if var p = map[key], addresses.contains(p.address) {
                p.expiresAt = now + Self.pinTTLMs
                map[key] = p
                return p
            }
            let ip = EgressPolicy.format(addresses[0])
            let p = Pinned(
                address: addresses[0], expiresAt: now + Self.pinTTLMs,
                whole: Self.make(connectMs: connectTimeoutMs, readMs: wholeReadMs, dnsOverride: [target.host: ip]),
                streaming: Self.make(connectMs: connectTimeoutMs, readMs: streamReadMs, dnsOverride: [target.host: ip]))
            if let old = map[key] {
                retired.withLock { $0 += [(now + retireAfterMs, old.whole), (now + retireAfterMs, old.streaming)] }
            }
            map[key] = p
            return p
        }
        return use == .whole ? chosen.whole : chosen.streaming
    }

    /// Resolves `host` and checks every address it has; throws when any is refused.
    func check(host: String, port: Int) async throws(Denied) -> [[UInt8]] {
        let addresses: [[UInt8]]
        do { addresses = try await resolver.resolve(host: host, port: port) } catch {
            throw Denied(description: "\(host) cannot be resolved")
        }
        guard !addresses.isEmpty else { throw Denied(description: "\(host) has no address") }
        for a in addresses {
            if let why = policy.refusal(for: a) { throw Denied(description: "\(host) resolves to \(EgressPolicy.format(a)), \(why)") }
        }
        return addresses
    }

    /// Checks a URL an admin is saving. A name that does not resolve now is accepted (it is checked
    /// again on every connection); a forbidden address is refused with the reason.
    func validate(_ url: String) async throws(Denied) {
        guard let target = URLTarget(url) else { return }
        if let literal = target.literalAddress {
            if let why = policy.refusal(for: literal) { throw Denied(description: "\(target.host) is \(why)") }
            return
        }
        guard let addresses = try? await resolver.resolve(host: target.host, port: target.port) else { return }
        for a in addresses {
            if let why = policy.refusal(for: a) { throw Denied(description: "\(target.host) resolves to \(EgressPolicy.format(a)), \(why)") }
        }
    }

    /// Shuts down retired clients whose calls have had time to finish.
    func sweep() async {
        let now = clock.nowMs()
        let due = retired.withLock { list -> [HTTPClient] in
            let due = list.filter { $0.at <= now }.map(\.client)
            list.removeAll { $0.at <= now }
            return due
        }
        for c in due { try? await c.shutdown() }
    }

    func shutdown() async {
        var all = [whole, streaming]
        all += pinned.withLock { map in
            defer { map = [:] }
            return map.values.flatMap { [$0.whole, $0.streaming] }
        }
        all += retired.withLock { list in
            defer { list = [] }
            return list.map(\.client)
        }
        for c in all { try? await c.shutdown() }
    }
}
