import FogCore
import Foundation

/// What one policy achieved on one run (or the mean over several seeds).
public struct SimulationResult: Sendable, Codable, Equatable {
    public var scenario: String
    public var policy: String
    public var seeds: [UInt64]
    public var tasks: Int
    public var completed: Int
    /// Refused at submit: no node could ever hold them, or their deadline was out of reach.
    public var refused: Int
    /// Attempts lost with a failed node (placed again).
    public var lost: Int
    /// From the first arrival to the last completion, in seconds.
    public var makespanSeconds: Double
    /// From arrival to result back at the origin, over completed tasks.
    public var meanResponseSeconds: Double
    public var p95ResponseSeconds: Double
    /// Of the tasks with a deadline (refused ones included), the share that did not meet it.
    public var deadlineMissRatio: Double
    public var criticalDeadlineMissRatio: Double
    public var criticalMeanResponseSeconds: Double
    /// Every node's P_idle + (P_max − P_idle) · utilisation, over the makespan, in kJ.
    public var energyKJ: Double
    /// (max − min) / mean of the nodes' CPU utilisation over the makespan.
    public var imbalance: Double
    /// Megabytes that crossed zones (tasks run outside their origin zone).
    public var networkMB: Double
    /// The most attempts of one affinity key active at once (0 without keys).
    public var peakActivePerKey: Int

    enum CodingKeys: String, CodingKey {
        case scenario, policy, seeds, tasks, completed, refused, lost, imbalance
        case makespanSeconds = "makespan_s"
        case meanResponseSeconds = "mean_response_s"
        case p95ResponseSeconds = "p95_response_s"
        case deadlineMissRatio = "deadline_miss_ratio"
        case criticalDeadlineMissRatio = "critical_deadline_miss_ratio"
        case criticalMeanResponseSeconds = "critical_mean_response_s"
        case energyKJ = "energy_kj"
        case networkMB = "network_mb"
        case peakActivePerKey = "peak_active_per_key"
    }

    static func measure(
        scenario: Scenario, workload: Workload, finished: [Double], done: [Bool], refused: [Bool],
        energyJ: [Double], busyCPUSeconds: [Double], networkMB: Double, lost: Int,
        peakActivePerKey: Int
    ) -> SimulationResult {
        let tasks = workload.tasks
        var responses: [Double] = []
        var critical: [Double] = []
        var withDeadline = 0
        var missed = 0
        var criticalWithDeadline = 0
        var criticalMissed = 0
        for (i, task) in tasks.enumerated() {
            let isCritical = task.spec.priority == .critical
            if done[i] {
                let response = finished[i] - task.arrival
                responses.append(response)
                if isCritical { critical.append(response) }
            }
            if let deadline = task.deadline {
                let miss = !done[i] || finished[i] > deadline
                withDeadline += 1
                if miss { missed += 1 }
                if isCritical {
                    criticalWithDeadline += 1
                    if miss { criticalMissed += 1 }
                }
            }
        }
        responses.sort()
        let first = tasks.first?.arrival ?? 0
        let last = zip(finished, done).filter(\.1).map(\.0).max() ?? first
        let makespan = max(1e-9, last - first)
        let utilisation = workload.nodes.indices.map {
            busyCPUSeconds[$0] / (Double(workload.nodes[$0].capacity.cpuMillicores) / 1000 * makespan)
        }
        let meanUtilisation = utilisation.reduce(0, +) / Double(max(1, utilisation.count))
        return SimulationResult(
            scenario: scenario.name, policy: "", seeds: [], tasks: tasks.count, completed: responses.count,
            refused: refused.filter { $0 }.count, lost: lost, makespanSeconds: last - first,
            meanResponseSeconds: average(responses), p95ResponseSeconds: percentile(responses, 0.95),
            deadlineMissRatio: withDeadline == 0 ? 0 : Double(missed) / Double(withDeadline),
            criticalDeadlineMissRatio: criticalWithDeadline == 0 ? 0 : Double(criticalMissed) / Double(criticalWithDeadline),
            criticalMeanResponseSeconds: average(critical), energyKJ: energyJ.reduce(0, +) / 1000,
            imbalance: meanUtilisation > 0 ? (utilisation.max()! - utilisation.min()!) / meanUtilisation : 0,
            networkMB: networkMB, peakActivePerKey: peakActivePerKey)
    }

    /// The mean of several runs of the same policy and scenario (counts are summed).
    public static func mean(of runs: [SimulationResult]) -> SimulationResult {
        var m = runs[0]
        func avg(_ key: KeyPath<SimulationResult, Double>) -> Double { runs.map { $0[keyPath: key] }.reduce(0, +) / Double(runs.count) }
        m.seeds = runs.flatMap(\.seeds)
        m.tasks = runs.map(\.tasks).reduce(0, +)
        m.completed = runs.map(\.completed).reduce(0, +)
        m.refused = runs.map(\.refused).reduce(0, +)
        m.lost = runs.map(\.lost).reduce(0, +)
        m.makespanSeconds = avg(\.makespanSeconds)
        m.meanResponseSeconds = avg(\.meanResponseSeconds)
        m.p95ResponseSeconds = avg(\.p95ResponseSeconds)
        m.deadlineMissRatio = avg(\.deadlineMissRatio)
        m.criticalDeadlineMissRatio = avg(\.criticalDeadlineMissRatio)
        m.criticalMeanResponseSeconds = avg(\.criticalMeanResponseSeconds)
        m.energyKJ = avg(\.energyKJ)
        m.imbalance = avg(\.imbalance)
        m.networkMB = avg(\.networkMB)
        m.peakActivePerKey = runs.map(\.peakActivePerKey).max() ?? 0
        return m
    }
}

private func average(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }

/// The `q` quantile of sorted `values` (nearest rank).
private func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
}
