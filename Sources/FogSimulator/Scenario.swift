import FogCore
import Foundation

/// A simulation scenario, as the JSON files in `scenarios/` describe it: the fog nodes, the
/// zones and their latencies, the workload (arrivals, task profiles, classes, deadlines) and
/// node failures. docs/PLACEMENT.md documents every field.
public struct Scenario: Sendable, Codable, Equatable {
    /// A group of identical nodes: `count` of them, named `name-1`, `name-2`, ...
    public struct NodeGroup: Sendable, Codable, Equatable {
        public var name: String
        public var count: Int
        public var zone: String
        public var cpuMillicores: Int
        public var memoryMB: Int
        public var storageMB: Int
        public var speed: Double
        public var idleWatts: Double
        public var maxWatts: Double
        public var batteryPercent: Double?
        /// One-way latency from each zone to these nodes, in milliseconds.
        public var latencyMS: [String: Double]
        public var labels: [String: String]?

        enum CodingKeys: String, CodingKey {
            case name, count, zone, speed, labels
            case cpuMillicores = "cpu_millicores"
            case memoryMB = "memory_mb"
            case storageMB = "storage_mb"
            case idleWatts = "idle_w"
            case maxWatts = "max_w"
            case batteryPercent = "battery_pct"
            case latencyMS = "latency_ms"
        }
    }

    /// How tasks arrive: a Poisson process at `ratePerSecond`, plus, for `bursty`, bursts of
    /// `burstRatePerSecond` lasting `burstSeconds` every `burstEverySeconds` (IoT devices that
    /// all report at once).
    public struct Arrivals: Sendable, Codable, Equatable {
        public enum Pattern: String, Sendable, Codable { case poisson, bursty }
        public var pattern: Pattern
        public var ratePerSecond: Double
        public var burstRatePerSecond: Double?
        public var burstEverySeconds: Double?
        public var burstSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case pattern
            case ratePerSecond = "rate_per_s"
            case burstRatePerSecond = "burst_rate_per_s"
            case burstEverySeconds = "burst_every_s"
            case burstSeconds = "burst_s"
        }
    }

    /// A kind of task and its share of the workload; ranges are drawn uniformly.
    public struct Profile: Sendable, Codable, Equatable {
        public var name: String
        public var share: Double
        public var cpuMillicores: [Int]
        public var memoryMB: [Int]
        public var storageMB: [Int]?
        /// Run time on a speed-1.0 node, the estimate a client sends as `expected_s`.
        public var seconds: [Double]
        /// Megabytes the task sends from its origin and back.
        public var dataMB: Double?

        enum CodingKeys: String, CodingKey {
            case name, share, seconds
            case cpuMillicores = "cpu_millicores"
            case memoryMB = "memory_mb"
            case storageMB = "storage_mb"
            case dataMB = "data_mb"
        }
    }

    /// A node that goes down at `atSeconds` and comes back `downSeconds` later (never when nil).
    public struct Failure: Sendable, Codable, Equatable {
        public var node: String
        public var atSeconds: Double
        public var downSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case node
            case atSeconds = "at_s"
            case downSeconds = "down_s"
        }
    }

    public var name: String
    public var description: String
    public var tasks: Int
    public var nodes: [NodeGroup]
    public var arrivals: Arrivals
    public var profiles: [Profile]
    /// Share of each class; missing classes have none.
    public var classes: [String: Double]
    /// Share of tasks coming from each zone.
    public var origins: [String: Double]
    /// Per class, the share of its tasks that have a deadline, and how much time they get:
    /// `deadline = arrival + factor × expected run time + network allowance`.
    public var deadlines: [String: DeadlineRule]
    /// Per class, the maximum latency from origin a task of that class accepts (a hard limit).
    public var maxLatencyMS: [String: Int]?
    /// How much a task's real run time differs from its estimate: drawn in ±`noise` (0.2 = ±20%).
    public var runTimeNoise: Double?
    public var failures: [Failure]?
    /// How long the scheduler takes to notice a failed node (the heartbeat TTL).
    public var detectionSeconds: Double?
    /// Refuse tasks whose deadline no live node can meet at arrival (`deadline_policy: refuse`).
    public var refuseUnreachableDeadlines: Bool?
    /// Affinity keys on the tasks (camera streams that want the same node) and their limits.
    public var affinity: Affinity?

    public struct Affinity: Sendable, Codable, Equatable {
        /// How many tasks share a key, on average.
        public var tasksPerKey: Int
        /// As `FOG_AFFINITY_MAX_ACTIVE` and `FOG_AFFINITY_MAX_PER_SECOND`.
        public var maxActive: Int?
        public var maxPerSecond: Double?

        enum CodingKeys: String, CodingKey {
            case tasksPerKey = "tasks_per_key"
            case maxActive = "max_active"
            case maxPerSecond = "max_per_second"
        }
    }

    public struct DeadlineRule: Sendable, Codable, Equatable {
        public var share: Double
        public var factor: Double
        /// Seconds added for the network and dispatch.
        public var allowanceSeconds: Double

        enum CodingKeys: String, CodingKey {
            case share, factor
            case allowanceSeconds = "allowance_s"
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, description, tasks, nodes, arrivals, profiles, classes, origins, deadlines, failures
        case maxLatencyMS = "max_latency_ms"
        case runTimeNoise = "run_time_noise"
        case detectionSeconds = "detection_s"
        case refuseUnreachableDeadlines = "refuse_unreachable_deadlines"
        case affinity
    }

    /// A scenario read from JSON, with every problem named.
    public static func load(contentsOf url: URL) throws -> Scenario {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw Invalid("cannot read scenario \(url.path): \(error.localizedDescription)")
        }
        let scenario: Scenario
        do { scenario = try JSONDecoder().decode(Scenario.self, from: data) } catch {
            throw Invalid("scenario \(url.path) is not valid: \(Self.describe(error))")
        }
        try scenario.validate()
        return scenario
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public func validate() throws {
        var problems: [String] = []
        if tasks < 1 || tasks > 10_000_000 { problems.append("tasks must be 1 to 10,000,000") }
        if nodes.isEmpty { problems.append("nodes is empty") }
        for group in nodes {
            if group.count < 1 || group.count > 10_000 { problems.append("nodes \(group.name): count must be 1 to 10,000") }
            // The ranges a real node's registration must keep, so that no sum or conversion overflows.
            if !FogNodeInfo.Limits.cpuMillicores.contains(group.cpuMillicores) || !FogNodeInfo.Limits.memoryMB.contains(group.memoryMB)
                || !FogNodeInfo.Limits.storageMB.contains(group.storageMB)
            {
                problems.append("nodes \(group.name): capacity must be positive and within a fog node's limits")
            }
            if !FogNodeInfo.Limits.speed.contains(group.speed) {
                problems.append("nodes \(group.name): speed must be more than 0 and at most 1000")
            }
            if group.maxWatts < group.idleWatts || !FogNodeInfo.Limits.watts.contains(group.idleWatts)
                || !FogNodeInfo.Limits.watts.contains(group.maxWatts)
            {
                problems.append("nodes \(group.name): need 0 <= idle_w <= max_w <= 1000000")
            }
        }
        if !(arrivals.ratePerSecond > 0 && arrivals.ratePerSecond <= 1e7) {
            problems.append("arrivals.rate_per_s must be more than 0 and at most 10,000,000")
        }
        if arrivals.pattern == .bursty,
            !((arrivals.burstRatePerSecond ?? 0) > 0 && (arrivals.burstEverySeconds ?? 0) > 0 && (arrivals.burstSeconds ?? 0) > 0)
        {
            problems.append("bursty arrivals need burst_rate_per_s, burst_every_s and burst_s above 0")
        }
        if profiles.isEmpty || profiles.contains(where: { !($0.share > 0) }) { problems.append("profiles need positive shares") }
        for profile in profiles {
            if ![profile.cpuMillicores.count, profile.memoryMB.count, profile.seconds.count].allSatisfy({ $0 == 1 || $0 == 2 }) {
                problems.append("profile \(profile.name): ranges are [value] or [low, high]")
            } else if profile.cpuMillicores.contains(where: { !TaskLimits.cpuMillicores.contains($0) })
                || profile.memoryMB.contains(where: { !TaskLimits.memoryMB.contains($0) })
                || (profile.storageMB ?? []).contains(where: { !TaskLimits.storageMB.contains($0) })
                || profile.seconds.contains(where: { !TaskLimits.timeoutSeconds.contains($0) })
            {
                problems.append("profile \(profile.name): cpu, memory and seconds must be positive and within a task's limits")
            }
        }
        for name in classes.keys where PriorityClass(rawValue: name) == nil { problems.append("classes: unknown class \(name)") }
        if !classes.values.contains(where: { $0 > 0 }) { problems.append("classes need a positive share") }
        if !origins.values.contains(where: { $0 > 0 }) { problems.append("origins need a positive share") }
        for name in deadlines.keys where PriorityClass(rawValue: name) == nil { problems.append("deadlines: unknown class \(name)") }
        let names = Set(nodes.flatMap { group in (1...max(1, group.count)).map { "\(group.name)-\($0)" } })
        for failure in failures ?? [] where !names.contains(failure.node) {
            problems.append("failures: no node named \(failure.node)")
        }
        if let affinity, affinity.tasksPerKey < 1 || (affinity.maxActive ?? 1) < 1 || !((affinity.maxPerSecond ?? 1) > 0) {
            problems.append("affinity: tasks_per_key and max_active must be at least 1, max_per_second more than 0")
        }
        if !problems.isEmpty { throw Invalid("scenario \(name): " + problems.joined(separator: "; ")) }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?:
            return "missing \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        case .dataCorrupted(let context)?:
            return context.debugDescription
        default:
            return "\(error)"
        }
    }
}
