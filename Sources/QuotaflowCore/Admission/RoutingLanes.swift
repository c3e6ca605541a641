import HashTreeCollections
import Synchronization

/// Resources of one pool that a request either fits all together or not at all: the same kind
/// (owned or overflow), the same mode (shared or passthrough), and the same provider, beta list,
/// families and models. Selection checks a lane's fit once, then walks only its members, so its
/// cost does not grow with resources the request could never use.
public struct RoutingLane: Sendable {
    public let key: String
    public let overflow: Bool
    public let passthrough: Bool
    /// What every member serves (the first member's resource; all share its signature).
    public let sample: Resource
    /// The catalog's change count when a member last came, went or changed.
    public internal(set) var epoch: UInt64
    public internal(set) var members: TreeDictionary<String, RoutableResource>

    /// The lane a routable resource belongs to; `nil` for resources routing skips (not routable).
    /// Parts are joined with control characters, which no name or model contains.
    static func key(of r: Resource) -> String? {
        guard r.state.isRoutable else { return nil }
        let betas = CloudSettings.acceptedBetas(r.provider, r.cloud).map { "listed\u{1E}" + $0.sorted().joined(separator: "\u{1E}") } ?? "any"
        return [
            r.tenantId, r.poolId, r.kind == .overflow ? "overflow" : "owned", r.leaseMode == .passthrough ? "passthrough" : "shared",
            r.provider.rawValue, betas, r.families.map(\.rawValue).sorted().joined(separator: "\u{1E}"), r.models.joined(separator: "\u{1E}"),
        ].joined(separator: "\u{1F}")
    }

    /// Lane epochs come from one counter for the whole process, so they only grow, even across
    /// catalogs built from scratch: an index that saw an epoch knows any later change is newer.
    static let epochs = Atomic<UInt64>(0)
    static func nextEpoch() -> UInt64 { epochs.add(1, ordering: .relaxed).newValue }

    /// Whether a request fits every member, leaving out pins, load, leases and caps.
    func fits(_ r: AdmissionRequest, overflow: Bool) -> Bool { self.overflow == overflow && r.isServed(by: sample) }
}

extension CatalogDraft {
    /// Keeps the lanes in step with one resource's change.
    mutating func moveInLanes(from old: RoutableResource?, to new: RoutableResource?) {
        let resourceEpoch = RoutingLane.nextEpoch()
        if let old, let key = RoutingLane.key(of: old.resource) {
            var lanes = lanesByPool[old.resource.poolId] ?? []
            if let i = lanes.firstIndex(where: { $0.key == key }) {
                lanes[i].members[old.id] = nil
                lanes[i].epoch = resourceEpoch
                if lanes[i].members.isEmpty { lanes.remove(at: i) }
            }
            lanesByPool[old.resource.poolId] = lanes.isEmpty ? nil : lanes
        }
        guard let new, let key = RoutingLane.key(of: new.resource) else { return }
        var lanes = lanesByPool[new.resource.poolId] ?? []
        if let i = lanes.firstIndex(where: { $0.key == key }) {
            lanes[i].members[new.id] = new
            lanes[i].epoch = resourceEpoch
        } else {
            let r = new.resource
            lanes.append(
                RoutingLane(
                    key: key, overflow: r.kind == .overflow, passthrough: r.leaseMode == .passthrough, sample: r, epoch: resourceEpoch,
                    members: [new.id: new]))
        }
        lanesByPool[new.resource.poolId] = lanes
    }
}

extension Catalog {
    /// One lane of a pool, by its key.
    func lane(_ key: String, pool: String) -> RoutingLane? { lanesByPool[pool]?.first { $0.key == key } }

    /// The lanes of the project's pools that a request fits.
    func lanes(for r: AdmissionRequest, overflow: Bool) -> [RoutingLane] {
        var out: [RoutingLane] = []
        for poolId in r.project.poolIds {
            for lane in lanesByPool[poolId] ?? [] where lane.fits(r, overflow: overflow) { out.append(lane) }
        }
        return out
    }
}
