import ArgumentParser
import FogCore
import FogSimulator
import Foundation

/// `scheduler simulate`: runs placement policies over scenario files on a virtual clock.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare placement policies in a deterministic discrete-event simulation (docs/PLACEMENT.md).",
        discussion: """
            Each scenario file (scenarios/*.json) describes fog nodes, zones, the workload and failures. \
            Every policy runs the same workload for each seed; with several seeds the figures are their mean.
            Examples:
              scheduler simulate scenarios/heterogeneous.json --policy all
              scheduler simulate scenarios/*.json --seeds 10 --format csv --plot results.svg
            """)

    @Argument(help: "Scenario files (JSON).") var scenarios: [String]
    @Option(help: "Policies, comma-separated, or 'all' (\(PlacementPolicies.names.joined(separator: ", "))).")
    var policy = "all"
    @Option(help: "The first seed.") var seed: UInt64 = 1
    @Option(help: "How many seeds, from --seed up; the figures are their mean.") var seeds = 1
    @Option(help: "Override the scenario's task count.") var tasks: Int?
    @Option(help: "table, csv or json.") var format = "table"
    @Option(help: "Also write an SVG chart to this file.") var plot: String?
    @Option(help: "Override smart's weights: name=value pairs, comma-separated (as FOG_SMART_WEIGHTS).") var weights: String?
    @Option(help: "Pending tasks looked at per dispatch round (as FOG_DISPATCH_BATCH).") var batch = 500
    @Flag(help: "Print how long each policy took to stderr.") var timing = false

    func validate() throws {
        if seeds < 1 || seeds > 1_000 { throw ValidationError("--seeds must be 1 to 1000") }
        if let tasks, tasks < 1 || tasks > 10_000_000 { throw ValidationError("--tasks must be 1 to 10,000,000") }
        if batch < 1 || batch > 10_000 { throw ValidationError("--batch must be 1 to 10000") }
        if SimulationReport.Format(rawValue: format) == nil { throw ValidationError("--format must be table, csv or json") }
        _ = try policyNames()
        _ = try smartWeights()
    }

    func policyNames() throws -> [String] {
        if policy == "all" { return PlacementPolicies.names }
        let names = policy.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if let unknown = names.first(where: { PlacementPolicies.make($0) == nil }) {
            throw ValidationError("unknown policy '\(unknown)': one of \(PlacementPolicies.names.joined(separator: ", ")) or all")
        }
        return names
    }

    func smartWeights() throws -> SmartWeights {
        guard let weights else { return SmartWeights() }
        var overrides: [String: Double] = [:]
        for pair in weights.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let value = Double(parts[1]) else { throw ValidationError("--weights: '\(pair)' is not name=number") }
            overrides[parts[0]] = value
        }
        do { return try SmartWeights().applying(overrides) } catch { throw ValidationError("--weights: \(error)") }
    }

    func run() throws {
        let format = SimulationReport.Format(rawValue: format)!
        var options = Simulation.Options()
        options.batch = batch
        var panels: [[SimulationResult]] = []
        for path in scenarios {
            let scenario: Scenario
            do { scenario = try Scenario.load(contentsOf: URL(fileURLWithPath: path)) } catch {
                FileHandle.standardError.write(Data("scheduler simulate: \(error)\n".utf8))
                throw ExitCode(2)
            }
            let names = try policyNames()
            var results: [SimulationResult] = []
            for name in names {
                let started = ContinuousClock.now
                let comparison = Comparison(
                    scenario: scenario, policies: [name], seeds: (0..<UInt64(seeds)).map { seed &+ $0 }, weights: try smartWeights(),
                    taskCount: tasks, options: options)
                results += comparison.run()
                if timing {
                    FileHandle.standardError.write(Data("\(scenario.name) \(name): \(ContinuousClock.now - started)\n".utf8))
                }
            }
            panels.append(results)
            let text = SimulationReport.render(results, as: format)
            // CSV: one header for all scenarios.
            print(
                format == .csv && panels.count > 1 ? String(text.split(separator: "\n", maxSplits: 1).last ?? "") : text,
                terminator: format == .table ? "\n" : "")
        }
        if let plot {
            do { try SVGChart.render(panels).write(toFile: plot, atomically: true, encoding: .utf8) } catch {
                FileHandle.standardError.write(Data("scheduler simulate: cannot write \(plot): \(error.localizedDescription)\n".utf8))
                throw ExitCode(2)
            }
            FileHandle.standardError.write(Data("chart written to \(plot)\n".utf8))
        }
    }
}
