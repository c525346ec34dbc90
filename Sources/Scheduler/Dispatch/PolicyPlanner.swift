import FogCore

/// Places a batch of pending tasks with a `PlacementPolicy`, keeping the room left on each
/// node as it goes, so that one batch never overfills a node.
struct PolicyPlanner: DispatchPlanner {
    var policy: any PlacementPolicy
    var candidates: [NodeCandidate]

    mutating func plan(_ tasks: [TaskStore.PendingTask]) -> [TaskStore.PlanStep] {
        tasks.map { task in
            switch policy.place(task.spec, on: candidates) {
            case .wait(let reason):
                return .wait(reason: reason)
            case .place(let node, let score):
                if let index = candidates.firstIndex(where: { $0.id == node }) {
                    candidates[index].reserved = candidates[index].reserved + task.spec.resources
                    candidates[index].active += 1
                }
                return .place(node: node, score: score)
            }
        }
    }
}
