/// A data-plane credential after lookup: a project key or a virtual seat. A class, so the hot path
/// passes one reference instead of copying (and retaining) every field.
public final class DataPlaneKey: Sendable {
    public enum Kind: Sendable, Equatable {
        case projectKey
        case seat
    }

    public let kind: Kind
    public let id: String
    public let tenantId: String
    public let projectId: String
    public let name: String
    public let allowedModels: [String]
    public let budgetCapMicros: Int64?
    public let rpm: Int64?
    /// Seats expire; project keys do not.
    public let expiresAt: Int64?
    /// After a seat rotation, the previous key works until this time.
    public let validUntil: Int64?

    public init(
        kind: Kind, id: String, tenantId: String, projectId: String, name: String, allowedModels: [String], budgetCapMicros: Int64?, rpm: Int64?,
        expiresAt: Int64?, validUntil: Int64?
    ) {
        self.kind = kind
        self.id = id
        self.tenantId = tenantId
        self.projectId = projectId
        self.name = name
        self.allowedModels = allowedModels
        self.budgetCapMicros = budgetCapMicros
        self.rpm = rpm
        self.expiresAt = expiresAt
        self.validUntil = validUntil
    }
}

extension DataPlaneKey {
    /// A project key as the data plane sees it.
    public convenience init(_ k: ProjectKey) {
        self.init(
            kind: .projectKey, id: k.id, tenantId: k.tenantId, projectId: k.projectId, name: k.name, allowedModels: k.allowedModels,
            budgetCapMicros: k.budgetCapMicros, rpm: k.rpm, expiresAt: nil, validUntil: nil)
    }

    /// A seat's key (or, with `validUntil`, its previous key after a rotation).
    public convenience init(_ seat: Seat, validUntil: Int64? = nil) {
        self.init(
            kind: .seat, id: seat.id, tenantId: seat.tenantId, projectId: seat.projectId, name: seat.holder, allowedModels: seat.allowedModels,
            budgetCapMicros: seat.budgetCapMicros, rpm: seat.rpm, expiresAt: seat.expiresAt, validUntil: validUntil)
    }

    /// The digests a project key occupies: its own, live or revoked.
    public static func digests(of k: ProjectKey, digest: String) -> [(digest: String, key: DataPlaneKey?)] {
        [(digest, k.revokedAt == nil ? DataPlaneKey(k) : nil)]
    }

    /// The digests a seat occupies: its key and, after a rotation, the previous one.
    public static func digests(of seat: Seat, digest: String, previous: String?) -> [(digest: String, key: DataPlaneKey?)] {
        if seat.revokedAt != nil { return [(digest, nil)] + (previous.map { [($0, nil)] } ?? []) }
        var out: [(digest: String, key: DataPlaneKey?)] = [(digest, DataPlaneKey(seat))]
        if let previous, let until = seat.previousValidUntil { out.append((previous, DataPlaneKey(seat, validUntil: until))) }
        return out
    }
}
