import FogCore

/// Places a batch of pending tasks inside the dispatch transaction with FogCore's
/// `BatchPlacement`, the same code the simulator runs.
struct PolicyPlanner: DispatchPlanner {
    var placement: BatchPlacement
    /// Seconds since 1970, for deadlines and rate limits.
    let now: Double

    mutating func plan(_ tasks: [TaskStore.PendingTask]) -> [TaskStore.PlanStep] {
        // Each message says which life of its node it was placed in (TaskMessage.nodeStartedAt).
        let lives = Dictionary(placement.candidates.map { ($0.info.id, $0.info.startedAt) }) { a, _ in a }
        return placement.place(tasks.map(\.spec), at: now).map { decision in
            switch decision {
            case .place(let node, let score): .place(node: node, score: score, nodeStartedAt: lives[node].flatMap { $0 > 0 ? $0 : nil })
            case .wait(let reason): .wait(reason: reason)
            }
        }
    }
}
