import NIOCore
import Synchronization

/// Tells a request when its client connection closes, so upstream work can be cancelled.
///
/// The first data-plane request on a connection registers one `closeFuture` callback for it; each
/// request then sets a hook while it waits on the upstream. Unlike closing the inbound request
/// stream, this keeps HTTP keep-alive intact and costs one dictionary lookup per request.
final class ConnectionRegistry: Sendable {
    struct Entry {
        var hook: (@Sendable () -> Void)?
    }

    let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    /// Starts watching a connection (once per connection).
    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let isNew = entries.withLock { e -> Bool in
            guard e[id] == nil else { return false }
            e[id] = Entry()
            return true
        }
        if isNew { channel.closeFuture.whenComplete { _ in self.closed(id) } }
    }

    func closed(_ id: ObjectIdentifier) {
        let hook = entries.withLock { e -> (@Sendable () -> Void)? in e.removeValue(forKey: id)?.hook }
        hook?()
    }

    /// Runs `hook` when the connection closes, or at once if it already has.
    func watch(_ channel: any Channel, _ hook: @escaping @Sendable () -> Void) {
        let id = ObjectIdentifier(channel)
        let registered = entries.withLock { e -> Bool in
            guard e[id] != nil else { return false }
            e[id]?.hook = hook
            return true
        }
        if !registered && !channel.isActive { hook() }
    }

    func unwatch(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        entries.withLock { e in
            if e[id] != nil { e[id]?.hook = nil }
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
