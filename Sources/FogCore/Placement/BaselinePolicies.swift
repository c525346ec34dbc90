/// The baselines the placement work is measured against (issue [5/9]): they look at nothing
/// but which nodes have room.

/// Takes the feasible nodes in turn, in registration order, wrapping around.
public struct RoundRobinPolicy: PlacementPolicy {
    public let name = "round-robin"
    /// The (registration order, id) of the node chosen last; the next choice is the first
    /// feasible node after it, wrapping around.
    private var last: (order: Int, id: String)?

    public init() {}

    public mutating func choose(for task: TaskSpec, among feasible: [NodeCandidate], at now: Double) -> (NodeCandidate, PlacementScore) {
        let ordered = feasible.sorted { ($0.order, $0.id) < ($1.order, $1.id) }
        let next = last.flatMap { last in ordered.first { ($0.order, $0.id) > (last.order, last.id) } } ?? ordered[0]
        last = (next.order, next.id)
        return (next, PlacementScore(policy: name, total: 0, terms: ["order": Double(next.order)], candidates: feasible.count))
    }
}

/// The first node that fits, in registration order (first come, first served).
public struct FirstFitPolicy: PlacementPolicy {
    public let name = "fcfs"

    public init() {}

    public func choose(for task: TaskSpec, among feasible: [NodeCandidate], at now: Double) -> (NodeCandidate, PlacementScore) {
        let first = feasible.min { ($0.order, $0.id) < ($1.order, $1.id) }!
        return (first, PlacementScore(policy: name, total: 0, terms: ["order": Double(first.order)], candidates: feasible.count))
    }
}

/// A node picked uniformly at random among those that fit, from a seeded generator so that a
/// simulation is repeatable.
public struct RandomPolicy: PlacementPolicy {
    public let name = "random"
    private var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func choose(for task: TaskSpec, among feasible: [NodeCandidate], at now: Double) -> (NodeCandidate, PlacementScore) {
        let ordered = feasible.sorted { $0.id < $1.id }
        let index = Int(generator.next() % UInt64(ordered.count))
        return (ordered[index], PlacementScore(policy: name, total: 0, terms: ["index": Double(index)], candidates: feasible.count))
    }
}

/// A small, fast, seeded random number generator (SplitMix64): the same seed gives the same
/// sequence on every platform, which `SystemRandomNumberGenerator` does not promise.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The policies by name, as `FOG_PLACEMENT_POLICY` and the simulator take them.
public enum PlacementPolicies {
    /// `smart` first: it is the default.
    public static let names = ["smart", "least-loaded", "min-min", "round-robin", "fcfs", "random"]
    /// The classic policies `smart` is measured against.
    public static let baselines = ["round-robin", "fcfs", "random"]

    /// A fresh policy called `name`, or nil for an unknown name.
    public static func make(_ name: String, seed: UInt64 = 1, weights: SmartWeights = .init()) -> (any PlacementPolicy)? {
        switch name {
        case "smart": SmartPolicy(weights: weights)
        case "least-loaded": LeastLoadedPolicy()
        case "min-min": MinMinPolicy(defaultEstimate: weights.defaultEstimate)
        case "round-robin": RoundRobinPolicy()
        case "fcfs": FirstFitPolicy()
        case "random": RandomPolicy(seed: seed)
        default: nil
        }
    }
}
