/// Which resource each conversation last used, so its next turn goes there while that resource is
/// eligible and the provider's prompt cache stays warm. Bindings are per tenant and key, forgotten
/// after an hour unused (no provider keeps a prompt cache longer), and bounded in number.
public struct SessionBook: Sendable {
    struct Binding: Sendable {
        var resourceId: String
        var lastUsed: Int64
    }

    var bindings: [String: Binding] = [:]
    public static let idleMs: Int64 = 3_600_000
    public static let capacity = 100_000

    public init() {}

    static func key(tenantId: String, keyId: String, session: String) -> String { "\(tenantId)\u{1F}\(keyId)\u{1F}\(session)" }

    /// The resource the conversation is bound to, if the binding is still fresh.
    func bound(_ key: String, now: Int64) -> String? {
        guard let b = bindings[key], now - b.lastUsed < Self.idleMs else { return nil }
        return b.resourceId
    }

    mutating func bind(_ key: String, to resourceId: String, now: Int64) {
        if bindings.count >= Self.capacity, bindings[key] == nil {
            // Full: forget idle bindings, then the oldest, down to 80%, so the next sweep is
            // a fifth of the capacity of new conversations away (amortised, never per request).
            bindings = bindings.filter { now - $0.value.lastUsed < Self.idleMs }
            if bindings.count > Self.capacity * 4 / 5 {
                let cut = bindings.values.map(\.lastUsed).sorted()[bindings.count - Self.capacity * 4 / 5]
                bindings = bindings.filter { $0.value.lastUsed > cut }
            }
        }
        bindings[key] = Binding(resourceId: resourceId, lastUsed: now)
    }

    public var count: Int { bindings.count }
}
