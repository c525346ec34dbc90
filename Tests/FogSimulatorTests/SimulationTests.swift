import FogCore
import Foundation
import Testing

@testable import FogSimulator

/// The scenario files in `scenarios/` (the benchmark-sized ones in `scenarios/bench/` apart).
func scenarioFiles() throws -> [URL] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let folder = root.appendingPathComponent("scenarios")
    return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
}

@Suite("Simulator")
struct SimulationTests {
    static func scenario(_ name: String) throws -> Scenario {
        try Scenario.load(contentsOf: try scenarioFiles().first { $0.lastPathComponent == "\(name).json" }!)
    }

    @Test("the same scenario and seed give the same results; another seed another workload")
    func deterministic() throws {
        let scenario = try Self.scenario("heterogeneous")
        let a = Comparison(scenario: scenario, policies: ["smart", "random"], seeds: [3], taskCount: 500).run()
        let b = Comparison(scenario: scenario, policies: ["smart", "random"], seeds: [3], taskCount: 500).run()
        let c = Comparison(scenario: scenario, policies: ["smart", "random"], seeds: [4], taskCount: 500).run()
        #expect(a == b)
        #expect(a[0].meanResponseSeconds != c[0].meanResponseSeconds)
        #expect(Workload(scenario: scenario, seed: 3).tasks.map(\.arrival) == Workload(scenario: scenario, seed: 3).tasks.map(\.arrival))
    }

    @Test(
        "no task is lost: every one completes or is refused, under every policy, failures included",
        arguments: PlacementPolicies.names)
    func nothingLost(policy: String) throws {
        let scenario = try Self.scenario("node-failure")
        let result = Comparison(scenario: scenario, policies: [policy], seeds: [1]).run()[0]
        #expect(result.completed + result.refused == result.tasks)
        #expect(result.completed > 0)
    }

    @Test("work on a failed node is lost, placed again after detection, and completes")
    func failure() throws {
        var scenario = try Self.scenario("balanced")
        scenario.nodes = [scenario.nodes[0]]
        scenario.nodes[0].count = 2
        scenario.arrivals = .init(pattern: .poisson, ratePerSecond: 2)
        scenario.failures = [.init(node: scenario.nodes[0].name + "-1", atSeconds: 20, downSeconds: nil)]
        let result = Comparison(scenario: scenario, policies: ["round-robin"], seeds: [1], taskCount: 200).run()[0]
        #expect(result.lost > 0)
        #expect(result.completed == 200)
    }

    @Test("the profile mix follows the reference deployment: 30% CPU-heavy, 30% memory-heavy, 40% light")
    func profiles() throws {
        let workload = Workload(scenario: try Self.scenario("heterogeneous"), seed: 9, taskCount: 20_000)
        let shares = Dictionary(
            grouping: workload.tasks, by: { String($0.spec.name.split(separator: "-").dropLast().joined(separator: "-")) }
        )
        .mapValues { Double($0.count) / 20_000 }
        #expect(abs(shares["cpu-heavy"]! - 0.3) < 0.02 && abs(shares["memory-heavy"]! - 0.3) < 0.02 && abs(shares["light"]! - 0.4) < 0.02)
        let heavy = workload.tasks.filter { $0.spec.name.hasPrefix("cpu-heavy") }
        #expect(heavy.allSatisfy { (1000...2000).contains($0.spec.resources.cpuMillicores) && $0.spec.resources.memoryMB == 256 })
    }

    @Test("tasks whose deadline cannot be met are refused when the scenario says so")
    func refuseDeadlines() throws {
        var scenario = try Self.scenario("balanced")
        scenario.deadlines["critical"] = .init(share: 1, factor: 0.5, allowanceSeconds: 0)
        scenario.refuseUnreachableDeadlines = true
        let result = Comparison(scenario: scenario, policies: ["smart"], seeds: [1], taskCount: 1000).run()[0]
        #expect(result.refused > 0)
        #expect(result.completed + result.refused == 1000)
    }

    @Test("affinity in the simulator: a key's tasks share a node and its limit holds")
    func affinity() throws {
        var scenario = try Self.scenario("heterogeneous")
        scenario.affinity = .init(tasksPerKey: 50, maxActive: 2, maxPerSecond: nil)
        let workload = Workload(scenario: scenario, seed: 5, taskCount: 1000)
        #expect(Set(workload.tasks.compactMap(\.spec.affinityKey)).count == 20)
        let result = Simulation(scenario: scenario, workload: workload).run(SmartPolicy())
        #expect(result.completed == 1000)
        #expect(result.peakActivePerKey == 2)
        scenario.affinity = .init(tasksPerKey: 50, maxActive: nil, maxPerSecond: nil)
        let unlimited = Simulation(scenario: scenario, workload: Workload(scenario: scenario, seed: 5, taskCount: 1000)).run(SmartPolicy())
        #expect(unlimited.peakActivePerKey > 2)
    }

    @Test("a scenario with mistakes is refused with each one named")
    func invalidScenario() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID()).json")
        var scenario = try Self.scenario("balanced")
        scenario.tasks = 0
        scenario.nodes[0].speed = 0
        scenario.classes["urgent"] = 1
        scenario.failures = [.init(node: "nobody", atSeconds: 1, downSeconds: nil)]
        try JSONEncoder().encode(scenario).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect {
            try Scenario.load(contentsOf: url)
        } throws: { error in
            let text = "\(error)"
            return ["tasks must be", "speed must be", "unknown class urgent", "no node named nobody"].allSatisfy(text.contains)
        }
        try Data("{\"name\": 1}".utf8).write(to: url)
        #expect(throws: Scenario.Invalid.self) { try Scenario.load(contentsOf: url) }
    }

    @Test("reports: a table, CSV with one row per policy, JSON that decodes, an SVG with a bar per policy and metric")
    func reports() throws {
        let results = Comparison(scenario: try Self.scenario("bursty-iot"), policies: ["smart", "fcfs"], seeds: [1, 2], taskCount: 300)
            .run()
        let table = SimulationReport.render(results, as: .table)
        #expect(table.contains("mean of 2 seeds") && table.contains("smart") && table.contains("fcfs"))
        let csv = SimulationReport.render(results, as: .csv).split(separator: "\n")
        #expect(csv.count == 3 && csv[0].hasPrefix("scenario,seeds,policy,"))
        let decoded = try JSONDecoder().decode([SimulationResult].self, from: Data(SimulationReport.render(results, as: .json).utf8))
        #expect(decoded == results)
        let svg = SVGChart.render([results])
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<rect x=").count - 1 == 2 + 2 * SVGChart.metrics.count)
    }

    /// The acceptance: over every scenario file and ten seeds, smart beats the best of
    /// round-robin, FCFS and random on mean response time and on critical deadline misses in
    /// every scenario (where a baseline misses none, smart must miss none), and on energy in at
    /// least three of five.
    @Test("smart beats round-robin, FCFS and random in every scenario over 10 seeds")
    func smartBeatsBaselines() throws {
        var energyWins = 0
        let files = try scenarioFiles()
        #expect(files.count >= 5)
        for file in files {
            let scenario = try Scenario.load(contentsOf: file)
            let results = Comparison(scenario: scenario, policies: ["smart"] + PlacementPolicies.baselines, seeds: Array(1...10)).run()
            let smart = results[0]
            let baselines = results.dropFirst()
            let bestResponse = baselines.map(\.meanResponseSeconds).min()!
            let bestCritical = baselines.map(\.criticalDeadlineMissRatio).min()!
            let bestEnergy = baselines.map(\.energyKJ).min()!
            #expect(
                smart.meanResponseSeconds < bestResponse, "\(scenario.name): mean response \(smart.meanResponseSeconds) vs \(bestResponse)")
            #expect(
                smart.criticalDeadlineMissRatio < bestCritical || (bestCritical == 0 && smart.criticalDeadlineMissRatio == 0),
                "\(scenario.name): critical misses \(smart.criticalDeadlineMissRatio) vs \(bestCritical)")
            if smart.energyKJ < bestEnergy { energyWins += 1 }
        }
        #expect(energyWins >= 3, "smart used the least energy in \(energyWins) scenarios")
    }
}
