import FogCore
import Foundation

/// One task of a simulated workload: what the scheduler sees (`spec`, with `expected_s` as
/// the client's estimate) and what only the simulator knows (its real run time).
public struct SimulatedTask: Sendable {
    public var spec: TaskSpec
    /// Virtual seconds since the start of the run.
    public var arrival: Double
    /// The real run time on a speed-1.0 node; `spec.expectedSeconds` is the estimate.
    public var work: Double
    public var dataMB: Double
    public var deadline: Double?
}

/// The fog nodes and tasks of one run of a scenario, drawn from a seeded generator: the same
/// scenario and seed give the same workload, whatever the policy.
public struct Workload: Sendable {
    public var nodes: [FogNodeInfo]
    public var tasks: [SimulatedTask]
    public var failures: [Scenario.Failure]

    /// The virtual clock's origin as seconds since 1970, so that deadlines are real RFC 3339
    /// times that the policies read as they do live.
    public static let epoch = 1_800_000_000.0

    public init(scenario: Scenario, seed: UInt64, taskCount: Int? = nil) {
        var random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x5EED)
        nodes = scenario.nodes.enumerated().flatMap { groupIndex, group in
            (1...group.count).map { n in
                FogNodeInfo(
                    id: "\(group.name)-\(n)",
                    capacity: Resources(
                        cpuMillicores: group.cpuMillicores, memoryMB: group.memoryMB,
                        storageMB: group.storageMB),
                    zone: group.zone, labels: group.labels ?? [:], latencyMS: group.latencyMS,
                    power: .init(idleWatts: group.idleWatts, maxWatts: group.maxWatts, batteryPercent: group.batteryPercent),
                    speed: group.speed, version: "sim", startedAt: Double(groupIndex * 10_000 + n))
            }
        }
        failures = scenario.failures ?? []

        let count = taskCount ?? scenario.tasks
        let arrivals = Self.arrivals(scenario.arrivals, count: count, random: &random)
        let classes = Self.table(
            scenario.classes.compactMap { name, share in PriorityClass(rawValue: name).map { ($0, share) } }
                .sorted { $0.0.rank < $1.0.rank })
        let origins = Self.table(scenario.origins.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        let profiles = Self.table(scenario.profiles.map { ($0, $0.share) })
        let noise = scenario.runTimeNoise ?? 0.2
        let keyCount = scenario.affinity.map { UInt64(max(1, count / $0.tasksPerKey)) }

        tasks = arrivals.enumerated().map { index, arrival in
            let profile = profiles.pick(&random)
            let priority = classes.pick(&random)
            let origin = origins.pick(&random)
            let expected = Self.draw(profile.seconds, &random)
            let work = expected * (1 + noise * (2 * random.unit() - 1))
            var constraints = TaskSpec.Constraints(origin: origin)
            constraints.maxLatencyMS = scenario.maxLatencyMS?[priority.rawValue]
            var deadline: Double?
            if let rule = scenario.deadlines[priority.rawValue], random.unit() < rule.share {
                deadline = arrival + rule.factor * expected + rule.allowanceSeconds
            }
            let spec = TaskSpec(
                name: "\(profile.name)-\(index)", kind: .sleep, args: .init(seconds: expected), priority: priority,
                resources: Resources(
                    cpuMillicores: Int(Self.draw(profile.cpuMillicores.map(Double.init), &random)),
                    memoryMB: Int(Self.draw(profile.memoryMB.map(Double.init), &random)),
                    storageMB: Int(Self.draw((profile.storageMB ?? [0]).map(Double.init), &random))),
                constraints: constraints, deadline: deadline.map { RFC3339.format(Self.epoch + $0) },
                expectedSeconds: expected,
                deadlinePolicy: scenario.refuseUnreachableDeadlines == true ? .refuse : nil,
                affinityKey: keyCount.map { "key-\(random.next() % $0)" })
            // The deadline as the policies read it: the RFC 3339 text, to the millisecond.
            return SimulatedTask(
                spec: spec, arrival: arrival, work: work, dataMB: profile.dataMB ?? 0,
                deadline: spec.deadlineSeconds.map { $0 - Self.epoch })
        }
    }

    /// `count` arrival times: Poisson at the base rate, with bursts on top for `bursty`.
    static func arrivals(_ a: Scenario.Arrivals, count: Int, random: inout SplitMix64) -> [Double] {
        var times: [Double] = []
        times.reserveCapacity(count)
        var now = 0.0
        while times.count < count {
            var rate = a.ratePerSecond
            if a.pattern == .bursty, let every = a.burstEverySeconds, let length = a.burstSeconds, let burst = a.burstRatePerSecond,
                now.truncatingRemainder(dividingBy: every) >= every - length
            {
                rate += burst
            }
            now += -log(1 - random.unit()) / rate
            times.append(now)
        }
        return times
    }

    static func draw(_ range: [Double], _ random: inout SplitMix64) -> Double {
        range.count == 2 ? range[0] + (range[1] - range[0]) * random.unit() : range[0]
    }

    static func table<T>(_ entries: [(T, Double)]) -> WeightedTable<T> { WeightedTable(entries: entries.filter { $0.1 > 0 }) }
}

/// Picks entries in proportion to their weights.
struct WeightedTable<T> {
    let entries: [(T, Double)]
    var total: Double { entries.reduce(0) { $0 + $1.1 } }

    func pick(_ random: inout SplitMix64) -> T {
        var x = random.unit() * total
        for (value, weight) in entries {
            if x < weight { return value }
            x -= weight
        }
        return entries[entries.count - 1].0
    }
}

extension SplitMix64 {
    /// A uniform number in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
