import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Who is calling the admin API.
public enum AdminIdentity: Sendable, Equatable {
    case operatorToken
    case tenantAdmin(tenantId: String, keyId: String)

    /// The actor recorded in the audit log.
    public var actor: String {
        switch self {
        case .operatorToken: return "operator"
        case .tenantAdmin(_, let keyId): return "admin_key:\(keyId)"
        }
    }

    public var isOperator: Bool { self == .operatorToken }
}

public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: AdminIdentity?
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The request id carried by every log line of this request and returned as `x-request-id`.
    public var requestId: String { logger[metadataKey: "hb.request.id"]?.description ?? "unknown" }
}
