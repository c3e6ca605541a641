/// Why a resource was probed, recorded with each probe.
public enum ProbeTrigger: String, Sendable, CaseIterable {
    /// Proving a new, rotated, resumed or changed resource before it takes traffic.
    case admission
    /// The periodic check of a resource in service.
    case schedule
    /// The one probe at a cooldown's reset time.
    case halfOpen = "half_open"
    /// An admin asked (`POST .../verify`).
    case manual
    /// The provider refused a request with the resource's credential (401/403) or route (404).
    case refusal
}
