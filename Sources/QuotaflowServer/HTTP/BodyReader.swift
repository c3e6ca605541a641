import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix

/// Reads a request body with a size limit and a total time limit, so a client that trickles its body
/// (the slow-POST form of slowloris) or stops sending altogether cannot hold a handler open: when the
/// time runs out, the read is cancelled and the client gets 408 at once. A body whose framing is
/// broken (malformed chunked encoding) is a 400.
enum BodyReader {
    enum Failure: Error {
        case tooLarge(Int)
        case tooSlow(Int64)
        case malformed(String)
    }

    static func read(
        _ request: Request, limit: Int, timeoutMs: Int64, on eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()
    )
        async throws(Failure) -> ByteBuffer
    {
        let body = request.body
        let reader = Task(executorPreference: EventLoopExecutors.current) { () throws -> ByteBuffer in
            var out = ByteBuffer()
            do {
                for try await var chunk in body {
                    if out.readableBytes + chunk.readableBytes > limit { throw Failure.tooLarge(limit) }
                    if out.readableBytes == 0 {
                        out = chunk
                    } else {
                        out.writeBuffer(&chunk)
                    }
                }
            } catch let f as Failure {
                throw f
            } catch let e as HTTPParserError {
                throw Failure.malformed("the request body is malformed (\(e))")
            } catch {
                throw Failure.tooSlow(timeoutMs)
            }
            if Task.isCancelled { throw Failure.tooSlow(timeoutMs) }
            return out
        }
        let timer = eventLoop.scheduleTask(in: .milliseconds(max(1, timeoutMs))) { reader.cancel() }
        defer { timer.cancel() }
        switch await reader.result {
        case .success(let buffer): return buffer
        case .failure(let failure as Failure): throw failure
        case .failure: throw Failure.tooSlow(timeoutMs)
        }
    }
}
