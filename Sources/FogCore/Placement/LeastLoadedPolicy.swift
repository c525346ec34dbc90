/// Places a task on the node that will be least loaded once it runs there: the smallest
/// share of its CPU or memory in use (whichever is higher), ties to the fewest active
/// attempts, then to the node id so that the choice is deterministic.
public struct LeastLoadedPolicy: PlacementPolicy {
    public let name = "least-loaded"

    public init() {}

    public func choose(for task: TaskSpec, among feasible: [NodeCandidate], at now: Double) -> (NodeCandidate, PlacementScore) {
        func utilisation(_ node: NodeCandidate) -> (cpu: Double, memory: Double) { node.utilisation(adding: task.resources) }
        let best = feasible.min { a, b in
            let (ua, ub) = (utilisation(a), utilisation(b))
            let (la, lb) = (max(ua.cpu, ua.memory), max(ub.cpu, ub.memory))
            if la != lb { return la < lb }
            if a.active != b.active { return a.active < b.active }
            return a.id < b.id
        }!
        let u = utilisation(best)
        let score = PlacementScore(
            policy: name, total: 1 - max(u.cpu, u.memory),
            terms: ["cpu_utilisation_after": u.cpu, "memory_utilisation_after": u.memory], candidates: feasible.count)
        return (best, score)
    }
}
