import NIOPosix
import QuotaflowCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a host name into addresses (4 or 16 bytes each). Injectable, so tests decide what a name
/// resolves to and never touch DNS or a private network.
public protocol HostResolver: Sendable {
    func resolve(host: String, port: Int) async throws -> [[UInt8]]
}

/// The system resolver (`getaddrinfo`), run on the blocking thread pool.
public struct SystemResolver: HostResolver {
    public init() {}

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public func resolve(host: String, port: Int) async throws -> [[UInt8]] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            #else
            hints.ai_socktype = SOCK_STREAM
            #endif
            var result: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &result)
            guard rc == 0, let first = result else { throw Failure(description: "cannot resolve \(host)") }
            defer { freeaddrinfo(first) }
            var out: [[UInt8]] = []
            var next: UnsafeMutablePointer<addrinfo>? = first
            while let info = next {
                if let addr = info.pointee.ai_addr {
                    if info.pointee.ai_family == AF_INET {
                        addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                            var a = p.pointee.sin_addr
                            out.append(withUnsafeBytes(of: &a) { Array($0) })
                        }
                    } else if info.pointee.ai_family == AF_INET6 {
                        addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                            var a = p.pointee.sin6_addr
                            out.append(withUnsafeBytes(of: &a) { Array($0) })
                        }
                    }
                }
                next = info.pointee.ai_next
            }
            var seen = Set<[UInt8]>()
            return out.filter { seen.insert($0).inserted }
        }
    }
}

/// A resolver with fixed answers, for tests and the demo.
public struct StaticResolver: HostResolver {
    public let answers: [String: [String]]

    public init(_ answers: [String: [String]]) { self.answers = answers }

    public func resolve(host: String, port: Int) async throws -> [[UInt8]] {
        guard let list = answers[host.lowercased()] else { throw SystemResolver.Failure(description: "cannot resolve \(host)") }
        return list.compactMap(EgressPolicy.parseIP)
    }
}
