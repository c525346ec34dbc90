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
    /// Messages waiting in its queues at its last heartbeat: work it has not picked up yet.
    public var queued: Int

    public init(info: FogNodeInfo, reserved: Resources = .zero, active: Int = 0, order: Int = 0, queued: Int = 0) {
        self.info = info
        self.reserved = reserved
        self.active = active
        self.order = order
        self.queued = queued
    }

    public var id: String { info.id }
    public var free: Resources { info.capacity - reserved }

    /// Seconds for `task` to reach this node from its origin zone and its result to come
    /// back: twice the declared one-way latency, 0 without an origin, `fallback` when the node
    /// does not know the zone.
    public func networkSeconds(for task: TaskSpec, unknownLatencyMS fallback: Double = 100) -> Double {
        guard let origin = task.constraints.origin else { return 0 }
        return 2 * (info.latency(from: origin) ?? fallback) / 1000
    }

    /// Seconds `task` would take from now until its result is back, if placed here now: the
    /// network both ways, the work waiting ahead of it, and its own run time at this node's speed.
    public func expectedCompletion(of task: TaskSpec, estimate: Double) -> Double {
        let run = estimate / info.speed
        return networkSeconds(for: task) + Double(queued) * run + run
    }

    /// The node's utilisation (the higher of CPU and memory) once `task` also runs here.
    public func utilisation(adding resources: Resources) -> (cpu: Double, memory: Double) {
        let after = reserved + resources
        return (
            Double(after.cpuMillicores) / Double(max(1, info.capacity.cpuMillicores)),
            Double(after.memoryMB) / Double(max(1, info.capacity.memoryMB))
        )
    }
}

/// Why a node was chosen: the policy, its total score (higher is better), and the terms
/// that made it.
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

/// Chooses a node for a task among live nodes. Implementations are pure (no I/O, no clock:
/// `now` is passed in, seconds since 1970 live or virtual seconds in the simulator), and
/// `PlacementConstraints` has already removed every node that breaks a hard constraint.
public protocol PlacementPolicy: Sendable {
    var name: String { get }
    /// Picks one of `feasible` (never empty) for `task`.
    mutating func choose(for task: TaskSpec, among feasible: [NodeCandidate], at now: Double) -> (NodeCandidate, PlacementScore)
    /// The order in which to place a batch of tasks (indices into `tasks`, which come in the
    /// dispatcher's class, deadline, age order). The default keeps that order.
    func placementOrder(of tasks: [TaskSpec], on nodes: [NodeCandidate], at now: Double) -> [Int]
}

extension PlacementPolicy {
    public func placementOrder(of tasks: [TaskSpec], on nodes: [NodeCandidate], at now: Double) -> [Int] {
        Array(tasks.indices)
    }

    /// Applies the hard constraints, then the policy.
    public mutating func place(_ task: TaskSpec, on nodes: [NodeCandidate], at now: Double = 0) -> PlacementDecision {
        switch PlacementConstraints.feasible(for: task, among: nodes) {
        case .failure(let reason): return .wait(reason: reason.description)
        case .success(let feasible):
            let (node, score) = choose(for: task, among: feasible, at: now)
            return .place(node: node.id, score: score)
        }
    }
}
