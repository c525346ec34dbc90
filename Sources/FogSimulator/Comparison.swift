import FogCore
import Foundation

/// Runs policies over a scenario for several seeds, each seed's workload shared by every
/// policy, and reports the mean per policy.
public struct Comparison: Sendable {
    public var scenario: Scenario
    public var policies: [String]
    public var seeds: [UInt64]
    public var weights: SmartWeights
    public var taskCount: Int?
    public var options: Simulation.Options

    public init(
        scenario: Scenario, policies: [String], seeds: [UInt64], weights: SmartWeights = .init(), taskCount: Int? = nil,
        options: Simulation.Options = .init()
    ) {
        self.scenario = scenario
        self.policies = policies
        self.seeds = seeds
        self.weights = weights
        self.taskCount = taskCount
        self.options = options
    }

    /// Per seed, per policy (in `policies` order).
    public func runs() -> [[SimulationResult]] {
        seeds.map { seed in
            let workload = Workload(scenario: scenario, seed: seed, taskCount: taskCount)
            let simulation = Simulation(scenario: scenario, workload: workload, options: options)
            return policies.map { name in
                var result = simulation.run(PlacementPolicies.make(name, seed: seed, weights: weights)!)
                result.policy = name
                result.seeds = [seed]
                return result
            }
        }
    }

    /// The mean over seeds, per policy.
    public func run() -> [SimulationResult] {
        let perSeed = runs()
        return policies.indices.map { p in SimulationResult.mean(of: perSeed.map { $0[p] }) }
    }
}

/// Writes results as a table, CSV or JSON.
public enum SimulationReport {
    public enum Format: String, CaseIterable, Sendable { case table, csv, json }

    static let columns: [(title: String, csv: String, value: @Sendable (SimulationResult) -> String)] = [
        ("policy", "policy", { $0.policy }),
        ("makespan s", "makespan_s", { fixed($0.makespanSeconds, 1) }),
        ("mean resp s", "mean_response_s", { fixed($0.meanResponseSeconds, 3) }),
        ("p95 resp s", "p95_response_s", { fixed($0.p95ResponseSeconds, 3) }),
        ("miss %", "deadline_miss_pct", { fixed($0.deadlineMissRatio * 100, 2) }),
        ("crit miss %", "critical_miss_pct", { fixed($0.criticalDeadlineMissRatio * 100, 2) }),
        ("energy kJ", "energy_kj", { fixed($0.energyKJ, 1) }),
        ("imbalance", "imbalance", { fixed($0.imbalance, 3) }),
        ("net MB", "network_mb", { fixed($0.networkMB, 0) }),
        ("refused", "refused", { String($0.refused) }),
        ("lost", "lost", { String($0.lost) }),
    ]

    public static func render(_ results: [SimulationResult], as format: Format) -> String {
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return String(decoding: (try? encoder.encode(results)) ?? Data("[]".utf8), as: UTF8.self) + "\n"
        case .csv:
            var lines = [(["scenario", "seeds"] + columns.map(\.csv)).joined(separator: ",")]
            for r in results {
                lines.append(([r.scenario, String(r.seeds.count)] + columns.map { $0.value(r) }).joined(separator: ","))
            }
            return lines.joined(separator: "\n") + "\n"
        case .table:
            guard let first = results.first else { return "" }
            let rows = [columns.map(\.title)] + results.map { r in columns.map { $0.value(r) } }
            let widths = columns.indices.map { c in rows.map { $0[c].count }.max()! }
            let body = rows.map { row in
                row.enumerated().map { c, text in
                    c == 0
                        ? text.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: widths[c] - text.count) + text
                }.joined(separator: "  ")
            }
            let seeds = first.seeds.count == 1 ? "seed \(first.seeds[0])" : "mean of \(first.seeds.count) seeds"
            let heading = "\(first.scenario): \(first.tasks / max(1, first.seeds.count)) tasks, \(seeds)"
            return ([heading] + body).joined(separator: "\n") + "\n"
        }
    }

    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
}
