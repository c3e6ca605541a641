import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QuotaflowCore

/// Who is calling the admin API.
public enum AdminIdentity: Sendable, Equatable {
    case operatorToken
    case tenantAdmin(tenantId: String, keyId: String, scope: AdminScope = .admin)

    /// The actor recorded in the audit log.
    public var actor: String {
        switch self {
        case .operatorToken: return "operator"
        case .tenantAdmin(_, let keyId, _): return "admin_key:\(keyId)"
        }
    }

    public var isOperator: Bool { self == .operatorToken }

    /// A viewer key: it may read, never change.
    public var isViewer: Bool { if case .tenantAdmin(_, _, .viewer) = self { true } else { false } }
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
