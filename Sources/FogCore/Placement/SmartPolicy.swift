/// The weights of `SmartPolicy`'s cost terms. The defaults were tuned with `scheduler
/// simulate` over the scenarios in `scenarios/` (docs/PLACEMENT.md); `FOG_SMART_WEIGHTS`
/// overrides any of them by name (`time=1,energy=0.4`).
public struct SmartWeights: Sendable, Equatable, Codable {
    /// Expected completion: network both ways, work queued ahead, run time at the node's speed.
    public var time: Double = 1
    /// Tightest fit: the absolute room left on the node after placement (small is good, so
    /// that big holes stay free for big tasks).
    public var fit: Double = 0.15
    /// The energy the task adds on the node: (P_max − P_idle) · its CPU share · its run time.
    public var energy: Double = 0.2
    /// The node's utilisation after placement.
    public var load: Double = 0.1
    /// A non-critical task that would leave a node with less than this share of its CPU or
    /// memory free pays `headroomPenalty`: the room is kept for critical work.
    public var headroom: Double = 0.15
    public var headroomPenalty: Double = 0.2
    /// Battery nodes below this charge (percent) pay `batteryPenalty`.
    public var lowBatteryPercent: Double = 30
    public var batteryPenalty: Double = 1
    /// Paid by a node on which the task's deadline would be missed.
    public var deadlineMissPenalty: Double = 10
    /// How much more completion time counts for each class.
    public var critical: Double = 8
    public var high: Double = 2
    public var normal: Double = 1
    public var low: Double = 0.5
    /// The run time assumed for a task that states none (`expected_s`), in seconds.
    public var defaultEstimate: Double = 1

    public init() {}

    public func urgency(of priority: PriorityClass) -> Double {
        switch priority {
        case .critical: critical
        case .high: high
        case .normal: normal
        case .low: low
        }
    }

    /// The names `FOG_SMART_WEIGHTS` and scenario files use.
    public static let names = [
        "time", "fit", "energy", "load", "headroom", "headroom_penalty", "low_battery_pct", "battery_penalty",
        "deadline_miss_penalty", "critical", "high", "normal", "low", "default_estimate_s",
    ]

    /// These weights with `overrides` applied; an unknown name or a negative value is refused.
    public func applying(_ overrides: [String: Double]) throws(Unknown) -> SmartWeights {
        var w = self
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
            guard value.isFinite, value >= 0 else { throw Unknown(name: name, reason: "must be a non-negative number") }
            switch name {
            case "time": w.time = value
            case "fit": w.fit = value
            case "energy": w.energy = value
            case "load": w.load = value
            case "headroom": w.headroom = min(value, 1)
            case "headroom_penalty": w.headroomPenalty = value
            case "low_battery_pct": w.lowBatteryPercent = value
            case "battery_penalty": w.batteryPenalty = value
            case "deadline_miss_penalty": w.deadlineMissPenalty = value
            case "critical": w.critical = value
            case "high": w.high = value
            case "normal": w.normal = value
            case "low": w.low = value
            case "default_estimate_s": w.defaultEstimate = max(value, 0.001)
            default: throw Unknown(name: name, reason: "is not a weight (one of \(Self.names.joined(separator: ", ")))")
            }
        }
        return w
    }

    public struct Unknown: Error, Sendable, Equatable, CustomStringConvertible {
        public let name: String
        public let reason: String
        public var description: String { "weight '\(name)' \(reason)" }
    }
}

/// The default policy: weighs, for every feasible node, how soon the task would be done there
/// (scaled by its class and deadline), how tightly it fits, the energy it adds, the node's
/// load and headroom, and battery charge, and takes the cheapest. Each term is normalised
/// over the feasible nodes, so weights compare like with like; the breakdown is the score.
public struct SmartPolicy: PlacementPolicy {
    public let name = "smart"
    public var weights: SmartWeights

    public init(weights: SmartWeights = .init()) { self.weights = weights }

    public func choose(for task: TaskSpec, among feasible: [NodeCandidate], at now: Double) -> (NodeCandidate, PlacementScore) {
        let w = weights
        let estimate = task.estimatedSeconds ?? w.defaultEstimate
        let completion = feasible.map { $0.expectedCompletion(of: task, estimate: estimate) }
        let energy = feasible.map { node -> Double in
            let share = Double(task.resources.cpuMillicores) / Double(max(1, node.info.capacity.cpuMillicores))
            return max(0, node.info.power.maxWatts - node.info.power.idleWatts) * min(1, share) * estimate / node.info.speed
        }
        let left = feasible.map { node -> Double in
            let free = node.free - task.resources
            return Double(free.cpuMillicores) / 1000 + Double(free.memoryMB) / 1024
        }
        let maxCompletion = max(completion.max()!, 1e-9)
        let maxEnergy = max(energy.max()!, 1e-9)
        let maxLeft = max(left.max()!, 1e-9)

        var urgency = w.urgency(of: task.priority)
        let slackBefore = task.deadlineSeconds.map { $0 - now }
        // A deadline close enough that the best node only just makes it counts like one class up.
        if let slack = slackBefore, slack < 2 * completion.min()! { urgency *= 2 }
        let critical = task.priority == .critical

        var best = 0
        var bestCost = Double.infinity
        var bestTerms: [String: Double] = [:]
        for (index, node) in feasible.enumerated() {
            let u = node.utilisation(adding: task.resources)
            let utilisation = max(u.cpu, u.memory)
            var terms: [String: Double] = [
                "time": w.time * urgency * completion[index] / maxCompletion,
                "fit": w.fit * left[index] / maxLeft,
                "energy": w.energy * energy[index] / maxEnergy,
                "load": w.load * utilisation,
            ]
            if !critical && utilisation > 1 - w.headroom { terms["headroom"] = w.headroomPenalty }
            if let battery = node.info.power.batteryPercent, battery < w.lowBatteryPercent { terms["battery"] = w.batteryPenalty }
            if let slack = slackBefore, slack < completion[index] { terms["deadline_miss"] = w.deadlineMissPenalty }
            let cost = terms.values.reduce(0, +)
            if cost < bestCost || (cost == bestCost && node.id < feasible[best].id) {
                best = index
                bestCost = cost
                bestTerms = terms
            }
        }
        bestTerms["expected_completion_s"] = completion[best]
        bestTerms["energy_j"] = energy[best]
        if let slack = slackBefore { bestTerms["deadline_slack_s"] = slack - completion[best] }
        return (feasible[best], PlacementScore(policy: name, total: -bestCost, terms: bestTerms, candidates: feasible.count))
    }
}

/// Min-min (Braun et al.): of the batch, the task with the smallest expected completion time
/// on its best node goes first, to that node; classes still go in order, so min-min reorders
/// only within a class.
public struct MinMinPolicy: PlacementPolicy {
    public let name = "min-min"
    /// The run time assumed for a task that states none.
    public var defaultEstimate: Double

    public init(defaultEstimate: Double = 1) { self.defaultEstimate = defaultEstimate }

    public func choose(for task: TaskSpec, among feasible: [NodeCandidate], at now: Double) -> (NodeCandidate, PlacementScore) {
        let estimate = task.estimatedSeconds ?? defaultEstimate
        let best = feasible.min { a, b in
            let (ca, cb) = (a.expectedCompletion(of: task, estimate: estimate), b.expectedCompletion(of: task, estimate: estimate))
            return ca != cb ? ca < cb : a.id < b.id
        }!
        let completion = best.expectedCompletion(of: task, estimate: estimate)
        return (
            best,
            PlacementScore(
                policy: name, total: -completion, terms: ["expected_completion_s": completion],
                candidates: feasible.count)
        )
    }

    public func placementOrder(of tasks: [TaskSpec], on nodes: [NodeCandidate], at now: Double) -> [Int] {
        let minimum = tasks.map { task -> Double in
            let estimate = task.estimatedSeconds ?? defaultEstimate
            return nodes.map { $0.expectedCompletion(of: task, estimate: estimate) }.min() ?? estimate
        }
        return tasks.indices.sorted { a, b in
            let (ra, rb) = (tasks[a].priority.rank, tasks[b].priority.rank)
            if ra != rb { return ra < rb }
            return minimum[a] != minimum[b] ? minimum[a] < minimum[b] : a < b
        }
    }
}
