/// Places a batch of pending tasks, the one placement path that the live dispatcher and the
/// simulator share: the policy's order, the affinity limits, the hard constraints, the
/// affinity preference, then the policy; the room on each node and the active count per
/// affinity key are kept up to date as it goes, so that one batch never overfills a node.
public struct BatchPlacement: Sendable {
    public var policy: any PlacementPolicy
    public var candidates: [NodeCandidate]
    public var limiter: AffinityLimiter
    /// Queued and running attempts per affinity key.
    public var activeByKey: [String: Int]

    public init(
        policy: any PlacementPolicy, candidates: [NodeCandidate], limiter: AffinityLimiter = .init(),
        activeByKey: [String: Int] = [:]
    ) {
        self.policy = policy
        self.candidates = candidates
        self.limiter = limiter
        self.activeByKey = activeByKey
    }

    /// A decision for each of `tasks`, in their order.
    public mutating func place(_ tasks: [TaskSpec], at now: Double) -> [PlacementDecision] {
        var decisions = [PlacementDecision](repeating: .wait(reason: ""), count: tasks.count)
        for index in policy.placementOrder(of: tasks, on: candidates, at: now) {
            decisions[index] = place(tasks[index], at: now)
        }
        return decisions
    }

    /// The decision for one task, with the room it takes recorded.
    public mutating func place(_ task: TaskSpec, at now: Double) -> PlacementDecision {
        let decision: PlacementDecision
        if let key = task.affinityKey {
            if let reason = limiter.refusal(for: key, active: activeByKey[key, default: 0], at: now) {
                return .wait(reason: reason)
            }
            decision = placeWithAffinity(task, key: key, at: now)
        } else {
            decision = policy.place(task, on: candidates, at: now)
        }
        guard case .place(let node, _) = decision, let index = candidates.firstIndex(where: { $0.id == node }) else {
            return decision
        }
        candidates[index].reserved = candidates[index].reserved + task.resources
        candidates[index].active += 1
        if let key = task.affinityKey {
            activeByKey[key, default: 0] += 1
            limiter.record(key, at: now)
        }
        return decision
    }

    /// The first feasible node in the key's rendezvous order over every live node, scored by
    /// the policy on that node alone so that the breakdown still explains it.
    private mutating func placeWithAffinity(_ task: TaskSpec, key: String, at now: Double) -> PlacementDecision {
        switch PlacementConstraints.feasible(for: task, among: candidates) {
        case .failure(let reason):
            return .wait(reason: reason.description)
        case .success(let feasible):
            let ranking = Rendezvous.ranked(candidates.map(\.id), for: key)
            let feasibleIDs = Set(feasible.map(\.id))
            let rank = ranking.firstIndex { feasibleIDs.contains($0) }!
            let chosen = feasible.first { $0.id == ranking[rank] }!
            var (_, score) = policy.choose(for: task, among: [chosen], at: now)
            score.terms["affinity_rank"] = Double(rank)
            score.candidates = feasible.count
            return .place(node: chosen.id, score: score)
        }
    }
}
