import Foundation
import QuotaflowCore

/// One budget counter in one period, as the fleet shares it (PostgreSQL's `fleet_counters`).
public struct FleetLevel: Sendable, Equatable {
    public var key: String
    public var periodStart: Int64
    /// Admission: the most spend plus holds may reach (`nil`: no cap). Unused when settling.
    public var limit: Int64?
    /// What is held (admission) or charged (settlement).
    public var amount: Int64
    /// The counter's spend as this replica counted it from the ledger, for a counter the fleet has
    /// no row for yet (then no replica has charged it since this replica counted).
    public var initial: Int64

    public init(key: String, periodStart: Int64, limit: Int64? = nil, amount: Int64, initial: Int64) {
        self.key = key
        self.periodStart = periodStart
        self.limit = limit
        self.amount = amount
        self.initial = initial
    }
}

/// What a replica holds for one admitted request until its ledger row commits, and what a ledger
/// row needs if the replica dies first.
public struct FleetReservation: Sendable, Equatable {
    public var id: String
    public var replica: String
    /// Who pays, and the request's worst case as the cost: what the ledger charges if the replica
    /// dies before the request's own row commits (`at` is when the request started).
    public var worst: LedgerCharge
    public var wireFormat: WireFormat
    public var endpoint: String
    public var model: String

    public init(id: String, replica: String, worst: LedgerCharge, wireFormat: WireFormat, endpoint: String, model: String) {
        self.id = id
        self.replica = replica
        self.worst = worst
        self.wireFormat = wireFormat
        self.endpoint = endpoint
        self.model = model
    }
}

/// An exclusive seat to lease with a hold: to `holder`, unless another holder has it and it has
/// not been idle for `idleMs` (at `now`, the caller's clock).
public struct FleetLease: Sendable, Equatable {
    public var resourceId: String
    public var holder: String
    public var idleMs: Int64
    public var now: Int64

    public init(resourceId: String, holder: String, idleMs: Int64, now: Int64) {
        self.resourceId = resourceId
        self.holder = holder
        self.idleMs = idleMs
        self.now = now
    }
}

/// An exclusive seat another holder has leased, somewhere in the fleet.
public struct FleetLeaseRefusal: Error, Sendable {}

/// A hold the fleet refused: the index of the first level that did not fit.
public struct FleetRefusal: Error, Sendable {
    public let index: Int
}

/// A rate limit the fleet refused: the index of the check, and how long until it has room.
public struct FleetRateRefusal: Error, Sendable {
    public let index: Int
    public let waitMs: Int64
}

/// One statement on the fleet's shared rows (a hold or a take), with the order its levels were
/// sorted into; run on a connection or, on the hot path, asynchronously on `Database.counters`.
public struct FleetStatement: Sendable {
    public let sql: String
    public let values: [SQLValue]
    /// Position in the statement -> position in the caller's list.
    public let order: [Int]

    /// Each level's spend, in the caller's order (a hold); empty for a take or a reservation gone.
    func result(_ rows: [Row]) throws -> [Int64] {
        guard let row = rows.first, row.has("spent") else { return [] }
        let spent = try StoreConnection.parseIntArray(try row.string("spent"))
        var out = [Int64](repeating: 0, count: order.count)
        for (i, original) in order.enumerated() where i < spent.count { out[original] = spent[i] }
        return out
    }

    /// A refusal the statement raised, named in the caller's terms; other errors as they are.
    func error(_ e: PostgresStoreError) -> any Error {
        func original(_ i: Int) -> Int { order.indices.contains(i) ? order[i] : 0 }
        switch e.sqlState {
        case "QF001": return FleetRefusal(index: original(Int(e.message.trimmingCharacters(in: .whitespaces)) ?? 0))
        case "QF002":
            let parts = e.message.split(separator: " ").compactMap { Int64($0) }
            return FleetRateRefusal(index: original(parts.first.map(Int.init) ?? 0), waitMs: parts.count > 1 ? parts[1] : 60_000)
        case "QF003": return FleetLeaseRefusal()
        default: return e
        }
    }
}
