import Foundation
import Hummingbird
import NIOCore

/// Reads a request body with a size limit and a total time limit, so a client that trickles its
/// body (the slow-POST form of slowloris) cannot hold a handler open for long. A client that stops
/// sending altogether is cut off by the connection idle timeout.
enum BodyReader {
    enum Failure: Error {
        case tooLarge(Int)
        case tooSlow(Int64)
    }

    static func read(_ request: Request, limit: Int, timeoutMs: Int64) async throws(Failure) -> ByteBuffer {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(1, timeoutMs)) * 1_000_000
        var out = ByteBuffer()
        do {
            for try await var chunk in request.body {
                if out.readableBytes + chunk.readableBytes > limit { throw Failure.tooLarge(limit) }
                if DispatchTime.now().uptimeNanoseconds > deadline { throw Failure.tooSlow(timeoutMs) }
                if out.readableBytes == 0 {
                    out = chunk
                } else {
                    out.writeBuffer(&chunk)
                }
            }
        } catch let f as Failure {
            throw f
        } catch {
            throw Failure.tooSlow(timeoutMs)
        }
        return out
    }
}
