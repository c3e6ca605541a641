import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Sends raw bytes to a local port and reads until the server closes or `readTimeoutMs` passes:
/// for requests no HTTP client would send (stalled or malformed bodies). The blocking socket calls
/// run on a thread of their own, never on the concurrency pool's few threads or the database's.
enum RawHTTP {
    static func exchange(port: Int, _ request: String, readTimeoutMs: Int = 5_000) async -> (text: String, seconds: Double) {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: blocking(port: port, request, readTimeoutMs: readTimeoutMs)) }.start()
        }
    }

    static func blocking(port: Int, _ request: String, readTimeoutMs: Int) -> (text: String, seconds: Double) {
        do {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return ("", 0) }
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { return ("", 0) }
            var tv = timeval(tv_sec: readTimeoutMs / 1000, tv_usec: Int((readTimeoutMs % 1000) * 1000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let bytes = Array(request.utf8)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            let start = Date()
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                out += buffer[0..<n]
            }
            return (String(decoding: out, as: UTF8.self), Date().timeIntervalSince(start))
        }
    }
}
