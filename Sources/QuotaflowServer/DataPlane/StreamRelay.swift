import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Passes a provider's event stream to the client as it arrives, metering it on the way.
///
/// Each chunk is written as soon as it is read (no buffering of the stream); writes are awaited, so a
/// slow client slows the upstream read instead of filling memory. The ledger row is committed before
/// the terminal event (`[DONE]`, `message_stop`, `response.completed`, Gemini's last chunk) is written, so a client never sees a stream end
/// whose row could still be lost. The resource's credential is redacted from every byte relayed.
struct StreamRelay {
    let answers: Answers
    let clock: any WallClock
    let totalTimeoutMs: Int64

    func response(status upstreamStatus: UInt, headers upstreamHeaders: HTTPHeaders, source: UpstreamBody, exchange: Exchange) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = upstreamHeaders.first(name: "content-type") ?? "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let redactor = exchange.redactor
        answers.addHeaders(&headers, exchange: exchange, upstream: upstreamHeaders, redactor: redactor)
        let status = Int(upstreamStatus)
        let clock = self.clock
        let deadline = clock.nowMs() + totalTimeoutMs
        let format = exchange.dialect.streamFormat
        let drop = exchange.plan.addedUsageOption
        let azure = exchange.admission?.resource.resource.provider == .azure
        return Response(
            status: .init(code: status), headers: headers,
            body: ResponseBody { writer in
                var meter = StreamMeter(format: format, dropUsageChunk: drop)
                var scrub = StreamRedactor(redactor)
                var clientGone = false
                var filtered = false
                /// A stream that ran to its end is charged its usage (the worst case when none came); one
                /// that broke off, or carried an upstream error event, is charged what it delivered.
                func outcome(_ status: Int, _ reason: ReasonCode?, _ flags: [LedgerFlag], brokeOff: Bool = false) -> Exchange.Outcome {
                    var flags = flags
                    if filtered { flags.append(.contentFiltered) }
                    var status = status
                    var reason = reason
                    var brokeOff = brokeOff
                    if meter.sawError {
                        flags.append(.streamError)
                        brokeOff = true
                        if (200..<300).contains(status) {
                            status = 502
                            reason = .upstreamError
                        }
                    }
                    return Exchange.Outcome(
                        status: status, reason: reason, usage: meter.usage, servedModel: meter.servedModel, extraFlags: flags, brokeOff: brokeOff,
                        seenOutput: meter.deltas, responseId: meter.responseId)
                }
                func send(_ bytes: [UInt8]) async throws {
                    guard !bytes.isEmpty else { return }
                    do { try await writer.write(ByteBuffer(bytes: bytes)) } catch {
                        clientGone = true
                        throw error
                    }
                }
                do {
                    while let chunk = try await source.next() {
                        if clock.nowMs() > deadline { throw StreamTimeout() }
                        let (out, terminal) = chunk.withUnsafeReadableBytes { meter.feed($0) }
                        if azure && !filtered { filtered = Azure.filtered(Array(chunk.readableBytesView)) }
                        let safe = scrub.feed(out)
                        if terminal {
                            await exchange.finish(outcome(status, nil, []))
                        }
                        try await send(safe)
                    }
                    let rest = scrub.feed(meter.flush()) + scrub.finish()
                    let ended = meter.sawTerminal
                    await exchange.finish(outcome(status, nil, ended ? [] : [.streamUnterminated], brokeOff: !ended))
                    try await send(rest)
                    try await writer.finish(nil)
                } catch {
                    if clientGone {
                        await exchange.finish(outcome(499, .clientClosed, [.clientClosed], brokeOff: true))
                    } else if error is StreamTimeout {
                        await exchange.finish(outcome(504, .upstreamTimeout, [.streamTimeout], brokeOff: true))
                    } else {
                        await exchange.finish(outcome(502, .upstreamError, [.streamInterrupted], brokeOff: true))
                    }
                    throw error
                }
            })
    }
}

struct StreamTimeout: Error {}
