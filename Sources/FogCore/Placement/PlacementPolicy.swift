/// A live fog node as placement sees it: its registration and the room left on it.
public struct NodeCandidate: Sendable, Equatable {
    public var info: FogNodeInfo
    /// What queued and running attempts hold on it (from the store, so it counts placements
    /// that the node has not started yet).
    public var reserved: Resources
    /// Active attempts on it.
    public var active: Int
    /// Its place in registration order (FCFS).
    public var order: Int

    public init(info: FogNodeInfo, reserved: Resources = .zero, active: Int = 0, order: Int = 0) {
        self.info = info
        self.reserved = reserved
        self.active = active
        self.order = order
    }

    public var id: String { info.id }
    public var free: Resources { info.capacity - reserved }
}

/// Why a node was chosen: the policy, its total score, and the terms that made it.
public struct PlacementScore: Sendable, Equatable, Codable {
    public var policy: String
    public var total: Double
    public var terms: [String: Double]
    /// How many nodes were feasible.
    public var candidates: Int

    public init(policy: String, total: Double, terms: [String: Double], candidates: Int) {
        self.policy = policy
        self.total = total
        self.terms = terms
        self.candidates = candidates
    }
}

public enum PlacementDecision: Sendable, Equatable {
    case place(node: String, score: PlacementScore)
    /// No node can take it now; the reason is shown on the pending task.
    case wait(reason: String)
}

/// Chooses a node for a task among live nodes. Implementations are pure (no I/O, no clock),
/// and `PlacementConstraints` has already removed every node that breaks a hard constraint.
public protocol PlacementPolicy: Sendable {
    var name: String { get }
    /// Picks one of `feasible` (never empty) for `task`.
    mutating func choose(for task: TaskSpec, among feasible: [NodeCandidate]) -> (NodeCandidate, PlacementScore)
}

extension PlacementPolicy {
    /// Applies the hard constraints, then the policy.
    public mutating func place(_ task: TaskSpec, on nodes: [NodeCandidate]) -> PlacementDecision {
        switch PlacementConstraints.feasible(for: task, among: nodes) {
        case .failure(let reason): return .wait(reason: reason.description)
        case .success(let feasible):
            let (node, score) = choose(for: task, among: feasible)
            return .place(node: node.id, score: score)
        }
    }
}
