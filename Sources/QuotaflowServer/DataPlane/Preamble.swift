import AsyncHTTPClient
import NIOCore
import QuotaflowCore

/// An upstream answer's body, read by one task at a time: first the preamble reader, then the relay,
/// which starts with the chunks the preamble held back.
///
/// `@unchecked Sendable` because the iterator is not: it is handed from the forwarder to the relay's
/// body writer, and only one of them reads at any time (the forwarder is done before the response,
/// and with it the writer, exists).
final class UpstreamBody: @unchecked Sendable {
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    private var held: [ByteBuffer] = []
    /// Set for AWS event-stream answers (Bedrock): they are re-emitted as Anthropic SSE.
    private var eventStream: EventStream.Decoder?

    init(_ body: HTTPClientResponse.Body, eventStream: Bool = false) {
        iterator = body.makeAsyncIterator()
        self.eventStream = eventStream ? EventStream.Decoder() : nil
    }

    /// The next chunk: held ones first, then the upstream's.
    func next() async throws -> ByteBuffer? {
        if !held.isEmpty { return held.removeFirst() }
        return try await pull()
    }

    /// Reads a chunk that the relay will send later.
    func readAhead() async throws -> ByteBuffer? {
        guard let chunk = try await pull() else { return nil }
        held.append(chunk)
        return chunk
    }

    /// The upstream's next chunk, or for an event stream the SSE of the next whole messages (a
    /// message that fails its CRC, or a stream cut inside one, is an error: nothing of it is passed on).
    private func pull() async throws -> ByteBuffer? {
        guard eventStream != nil else { return try await iterator.next() }
        while true {
            guard let raw = try await iterator.next() else {
                if eventStream!.pending > 0 { throw EventStream.DecodeError.messageCRC }
                return nil
            }
            let sse = try eventStream!.feed(raw.readableBytesView).flatMap(Bedrock.sse)
            if !sse.isEmpty { return ByteBuffer(bytes: sse) }
        }
    }
}

/// The opening of a Responses stream (`response.created`, `.in_progress`), held back until the first
/// output event, so a failure before any output goes to another resource instead of the client.
enum Preamble {
    enum Opening {
        /// Output started (or the stream finished normally): relay everything.
        case output
        /// The upstream failed before any output (`response.failed`, an `error` event), with its code.
        case failed(code: String?, message: String)
        /// The stream ended before any output, or broke.
        case ended
        /// No output within the first-byte limit.
        case timedOut
        /// Reading broke; perhaps the client left.
        case broken
        case clientGone

        /// The refusal to fail over with, its evidence, and whether it was a rate limit.
        func failure(firstByteTimeoutMs: Int64) -> (Refusal, [(String, String)], Bool) {
            switch self {
            case .failed(let code, let message):
                let limited = code == "rate_limit_exceeded"
                let refusal =
                    limited
                    ? Refusal(.noCapacity, "every eligible resource is rate limited upstream")
                    : Refusal(.upstreamError, "the upstream failed before any output (\(code ?? "error"))", status: 502)
                return (refusal, [("event", "response.failed"), ("code", code ?? ""), ("message", String(message.prefix(200)))], limited)
            case .timedOut:
                let why = "no output within \(firstByteTimeoutMs) ms"
                return (Refusal(.upstreamTimeout, "the upstream did not answer: \(why)"), [("error", why)], false)
            case .ended, .broken, .output, .clientGone:
                return (Refusal(.upstreamError, "the upstream stream ended before any output", status: 502), [("error", "stream ended early")], false)
            }
        }
    }

    static func read(_ body: UpstreamBody, format: StreamFormat, clock: any WallClock, until deadline: Int64) async -> Opening {
        var meter = StreamMeter(format: format)
        var pending: [UInt8] = []
        do {
            while let chunk = try await body.readAhead() {
                pending.append(contentsOf: chunk.readableBytesView)
                let terminal = chunk.withUnsafeReadableBytes { meter.feed($0).terminal }
                if meter.sawError { return failure(in: pending) }
                if meter.sawOutput || terminal { return .output }
                if clock.nowMs() > deadline { return .timedOut }
            }
            return .ended
        } catch is CancellationError {
            return .clientGone
        } catch {
            return .broken
        }
    }

    /// The code and message of the failure event among `bytes`.
    static func failure(in bytes: [UInt8]) -> Opening {
        var splitter = SSESplitter()
        let events = bytes.withUnsafeBytes { splitter.feed($0) } + [splitter.flush()[...]]
        for event in events {
            guard let value = try? JSONParser.parse(SSEEvent.data(event)) else { continue }
            let error = value["response"]?["error"] ?? value["error"] ?? value
            if value["type"]?.stringValue == "response.failed" || value["type"]?.stringValue == "error" {
                return .failed(code: error["code"]?.stringValue, message: error["message"]?.stringValue ?? "")
            }
        }
        return .failed(code: nil, message: "")
    }
}
