/// A request to exceed a budget (or use a model) for a while, and an admin's answer.
public struct Approval: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable { case open, approved, denied }

    public var id: String
    public var tenantId: String
    public var projectId: String
    public var keyId: String?
    public var requestedBy: String
    public var model: String?
    public var detail: String
    public var status: Status
    public var requestedAt: Int64
    public var decidedAt: Int64?
    public var decidedBy: String?
    /// A temporary increase of the project budget, in micro-USD.
    public var grantMicros: Int64?
    /// A model the project may use although it is not on its list.
    public var grantModel: String?
    public var grantUntil: Int64?
    public var note: String

    public init(
        id: String, tenantId: String, projectId: String, keyId: String? = nil, requestedBy: String, model: String? = nil, detail: String = "",
        status: Status = .open, requestedAt: Int64, decidedAt: Int64? = nil, decidedBy: String? = nil, grantMicros: Int64? = nil,
        grantModel: String? = nil, grantUntil: Int64? = nil, note: String = ""
    ) {
        self.id = id
        self.tenantId = tenantId
        self.projectId = projectId
        self.keyId = keyId
        self.requestedBy = requestedBy
        self.model = model
        self.detail = detail
        self.status = status
        self.requestedAt = requestedAt
        self.decidedAt = decidedAt
        self.decidedBy = decidedBy
        self.grantMicros = grantMicros
        self.grantModel = grantModel
        self.grantUntil = grantUntil
        self.note = note
    }

    /// Whether the grant is in force at `now`.
    public func isActive(at now: Int64) -> Bool { status == .approved && (grantUntil ?? 0) > now }
}
