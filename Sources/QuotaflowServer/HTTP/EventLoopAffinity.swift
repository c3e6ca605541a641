import HummingbirdCore
import Logging
import NIOCore
import NIOPosix

/// Runs a task's jobs on one NIO event loop. Event loops are serial executors, not task executors,
/// so this is the adapter: a job enqueued from the loop itself joins the loop's queue without a
/// wake-up, and one enqueued from elsewhere wakes the loop once.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}

/// One task executor per event loop of the group the server and the upstream client share.
struct EventLoopExecutors: Sendable {
    let byLoop: [ObjectIdentifier: EventLoopTaskExecutor]

    init(_ group: any EventLoopGroup) {
        var byLoop: [ObjectIdentifier: EventLoopTaskExecutor] = [:]
        for loop in group.makeIterator() { byLoop[ObjectIdentifier(loop)] = EventLoopTaskExecutor(loop) }
        self.byLoop = byLoop
    }

    subscript(_ loop: any EventLoop) -> EventLoopTaskExecutor? { byLoop[ObjectIdentifier(loop)] }

    static let shared = EventLoopExecutors(MultiThreadedEventLoopGroup.singleton)

    /// The executor of the event loop running the caller, if any: an unstructured task started
    /// with it as its preference stays on the caller's loop instead of waking a pool thread.
    static var current: EventLoopTaskExecutor? { MultiThreadedEventLoopGroup.currentEventLoop.flatMap { shared[$0] } }
}

/// HTTP/1 connections whose whole life runs on the event loop that accepted them: reading the
/// request, the handler, its upstream call's continuations (the upstream client prefers the loop it
/// is called from) and writing the response, so a request is not handed between threads.
struct LoopBoundHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> { inner.setup(channel: channel, logger: logger) }

    func handle(value: Value, logger: Logger) async {
        guard let executor = EventLoopExecutors.shared[value.channel.eventLoop] else {
            await inner.handle(value: value, logger: logger)
            return
        }
        await withTaskExecutorPreference(executor) { await inner.handle(value: value, logger: logger) }
    }
}
