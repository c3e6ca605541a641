import NIOCore
import Synchronization

/// Tells a request when its client goes away, so upstream work can be cancelled and its capacity freed.
///
/// Hummingbird allows remote half-closure, so a client that hangs up shows as an `inputClosed`
/// event rather than a closed channel. A small handler in each connection's pipeline reports both;
/// a request registers a hook for its connection while it waits on the upstream. Unlike consuming
/// the inbound request stream, this keeps HTTP keep-alive intact and costs one dictionary lookup.
final class ConnectionRegistry: Sendable {
    struct Entry {
        var hook: (@Sendable () -> Void)?
        var closed = false
    }

    let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    func opened(_ id: ObjectIdentifier) {
        entries.withLock { $0[id] = Entry() }
    }

    /// The client went away (input closed or connection closed): run the hook once.
    func clientGone(_ id: ObjectIdentifier, remove: Bool) {
        let hook = entries.withLock { e -> (@Sendable () -> Void)? in
            let hook = e[id]?.hook
            if remove {
                e.removeValue(forKey: id)
            } else {
                e[id]?.hook = nil
                e[id]?.closed = true
            }
            return hook
        }
        hook?()
    }

    /// Runs `hook` when the client goes away, or at once if it already has.
    func watch(_ channel: any Channel, _ hook: @escaping @Sendable () -> Void) {
        let id = ObjectIdentifier(channel)
        let gone = entries.withLock { e -> Bool in
            guard let entry = e[id] else { return !channel.isActive }
            if entry.closed { return true }
            e[id]?.hook = hook
            return false
        }
        if gone { hook() }
    }

    func unwatch(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        entries.withLock { e in
            if e[id] != nil { e[id]?.hook = nil }
        }
    }

    /// Whether the client of `channel` has gone away (closed, or half-closed its side).
    func isGone(_ channel: any Channel) -> Bool {
        let closed = entries.withLock { $0[ObjectIdentifier(channel)]?.closed }
        return closed ?? !channel.isActive
    }

    var count: Int { entries.withLock { $0.count } }
}

/// The pipeline handler that feeds `ConnectionRegistry`.
final class ConnectionWatchHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let registry: ConnectionRegistry

    init(registry: ConnectionRegistry) { self.registry = registry }

    func handlerAdded(context: ChannelHandlerContext) {
        registry.opened(ObjectIdentifier(context.channel))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed {
            registry.clientGone(ObjectIdentifier(context.channel), remove: false)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.clientGone(ObjectIdentifier(context.channel), remove: true)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        registry.clientGone(ObjectIdentifier(context.channel), remove: true)
    }
}
