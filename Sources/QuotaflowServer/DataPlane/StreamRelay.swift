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
/// the terminal event (`[DONE]` or `message_stop`) is written, so a client never sees a stream end
/// whose row could still be lost.
struct StreamRelay {
    let exchange: Exchange
    let runtime: Runtime

    func response(_ upstream: HTTPClientResponse, context: AppRequestContext) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = upstream.headers.first(name: "content-type") ?? "text/event-stream"
        headers[.cacheControl] = "no-cache"
        runtime.addBudgetHeaders(&headers, exchange: exchange)
        if let upstreamId = upstream.headers.first(name: "x-request-id") ?? upstream.headers.first(name: "request-id") {
            headers[HTTPField.Name("x-upstream-request-id")!] = upstreamId
        }
        let status = Int(upstream.status.code)
        let body = upstream.body
        let exchange = self.exchange
        let deadline = runtime.state.clock.nowMs() + runtime.state.config.totalTimeoutMs
        let clock = runtime.state.clock
        let format = exchange.parsed.format
        let drop = exchange.plan.addedUsageOption
        return Response(
            status: .init(code: status), headers: headers,
            body: ResponseBody { writer in
                var meter = StreamMeter(format: format, dropUsageChunk: drop)
                var clientGone = false
                /// A stream that ran to its end without usage is charged the worst case; one cut short
                /// is charged the output already delivered.
                func outcome(_ status: Int, _ reason: ReasonCode?, _ flags: [String], cutShort: Bool = false) -> Exchange.Outcome {
                    var flags = flags
                    if meter.sawError { flags.append("stream_error") }
                    return Exchange.Outcome(
                        status: status, reason: reason, usage: meter.usage, servedModel: meter.servedModel, extraFlags: flags,
                        partialOutput: cutShort && meter.usage == nil ? meter.deltas : nil)
                }
                do {
                    for try await chunk in body {
                        if clock.nowMs() > deadline { throw StreamTimeout() }
                        let (out, terminal) = chunk.withUnsafeReadableBytes { meter.feed($0) }
                        if terminal {
                            await exchange.finish(outcome(status, nil, []))
                        }
                        if !out.isEmpty {
                            do { try await writer.write(ByteBuffer(bytes: out)) } catch {
                                clientGone = true
                                throw error
                            }
                        }
                    }
                    let rest = meter.flush()
                    await exchange.finish(outcome(status, nil, meter.sawTerminal ? [] : ["stream_unterminated"]))
                    if !rest.isEmpty { try await writer.write(ByteBuffer(bytes: rest)) }
                    try await writer.finish(nil)
                } catch {
                    if clientGone {
                        await exchange.finish(outcome(499, .clientClosed, ["client_closed"], cutShort: true))
                    } else if error is StreamTimeout {
                        await exchange.finish(outcome(504, .upstreamTimeout, ["stream_timeout"], cutShort: true))
                    } else {
                        await exchange.finish(outcome(502, .upstreamError, ["stream_interrupted"], cutShort: true))
                    }
                    throw error
                }
            })
    }
}

struct StreamTimeout: Error {}
