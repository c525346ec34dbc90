import FogCore
import Foundation
import Testing

/// Crafted node tables for the policies that look at more than room.
@Suite("Smart, min-min and affinity placement")
struct SmartPlacementTests {
    static let now = 1_800_000_000.0

    static func node(
        _ id: String, cpu: Int = 4000, memory: Int = 4096, zone: String = "a", speed: Double = 1,
        latency: [String: Double] = [:], idle: Double = 10, max: Double = 50, battery: Double? = nil,
        reservedCPU: Int = 0, reservedMemory: Int = 0, queued: Int = 0, labels: [String: String] = [:]
    ) -> NodeCandidate {
        NodeCandidate(
            info: FogNodeInfo(
                id: id, capacity: Resources(cpuMillicores: cpu, memoryMB: memory, storageMB: 1000), zone: zone,
                labels: labels, latencyMS: latency, power: .init(idleWatts: idle, maxWatts: max, batteryPercent: battery),
                speed: speed, startedAt: 0),
            reserved: Resources(cpuMillicores: reservedCPU, memoryMB: reservedMemory), queued: queued)
    }

    static func task(
        _ priority: PriorityClass = .normal, cpu: Int = 500, memory: Int = 256, seconds: Double = 2,
        origin: String? = nil, maxLatency: Int? = nil, deadlineIn: Double? = nil, key: String? = nil,
        zone: String? = nil, labels: [String: String] = [:]
    ) -> TaskSpec {
        TaskSpec(
            name: "t", kind: .sleep, args: .init(seconds: seconds), priority: priority,
            resources: Resources(cpuMillicores: cpu, memoryMB: memory),
            constraints: .init(labels: labels, zone: zone, origin: origin, maxLatencyMS: maxLatency),
            deadline: deadlineIn.map { RFC3339.format(now + $0) }, affinityKey: key)
    }

    static func chosen(_ policy: inout some PlacementPolicy, _ task: TaskSpec, _ nodes: [NodeCandidate]) -> String? {
        if case .place(let node, _) = policy.place(task, on: nodes, at: now) { return node }
        return nil
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let task: TaskSpec
        let nodes: [NodeCandidate]
        let expected: String
        var testDescription: String { name }
    }

    static let smartCases: [Case] = [
        Case(
            name: "critical work goes to the fastest node", task: task(.critical),
            nodes: [node("slow", speed: 0.5), node("fast", speed: 2, idle: 80, max: 300)], expected: "fast"),
        Case(
            name: "a near node beats a faster one 100 ms away for a short task", task: task(.high, seconds: 0.1, origin: "a"),
            nodes: [node("cloud", zone: "cloud", speed: 2, latency: ["a": 100]), node("local", latency: ["a": 2])], expected: "local"),
        Case(
            name: "low work prefers the node that spends less energy for it", task: task(.low),
            nodes: [node("hungry", idle: 50, max: 400), node("frugal", idle: 3, max: 8)], expected: "frugal"),
        Case(
            name: "a battery node low on charge is spared", task: task(.normal),
            nodes: [node("battery", idle: 2, max: 6, battery: 15), node("mains", idle: 10, max: 50)], expected: "mains"),
        Case(
            name: "a node on which the deadline would be missed is avoided", task: task(.normal, seconds: 4, deadlineIn: 3),
            nodes: [node("slow", speed: 1, idle: 2, max: 5), node("fast", speed: 2, idle: 20, max: 200)], expected: "fast"),
        Case(
            name: "work queued on a node counts against it", task: task(.high),
            nodes: [node("busy", speed: 1.2, queued: 3), node("idle", speed: 1)], expected: "idle"),
        Case(
            name: "the tighter fit wins between nodes equally efficient", task: task(.normal, cpu: 1000, memory: 1024),
            nodes: [node("big", cpu: 16000, memory: 65536, idle: 40, max: 360), node("snug", cpu: 2000, memory: 2048, idle: 5, max: 45)],
            expected: "snug"),
    ]

    @Test("smart's choice on crafted tables", arguments: smartCases)
    func smart(_ c: Case) {
        var policy = SmartPolicy()
        #expect(Self.chosen(&policy, c.task, c.nodes) == c.expected)
    }

    @Test("smart explains its choice with every term")
    func breakdown() {
        var policy = SmartPolicy()
        guard
            case .place(_, let score) = policy.place(
                Self.task(.high, origin: "a", deadlineIn: 30),
                on: [Self.node("n1", latency: ["a": 5]), Self.node("n2")], at: Self.now)
        else {
            Issue.record("expected a placement")
            return
        }
        #expect(score.policy == "smart")
        for term in ["time", "fit", "energy", "load", "expected_completion_s", "energy_j", "deadline_slack_s"] {
            #expect(score.terms[term] != nil, "missing \(term)")
        }
        #expect(score.candidates == 2)
    }

    static let minMinCases: [Case] = [
        Case(
            name: "the earliest completion, latency included", task: task(seconds: 1, origin: "a"),
            nodes: [node("far-fast", zone: "b", speed: 2, latency: ["a": 400]), node("near", latency: ["a": 1])], expected: "near"),
        Case(
            name: "the faster node when latency is equal", task: task(seconds: 1),
            nodes: [node("n1", speed: 1), node("n2", speed: 1.5)], expected: "n2"),
    ]

    @Test("min-min picks the earliest completion", arguments: minMinCases)
    func minMin(_ c: Case) {
        var policy = MinMinPolicy()
        #expect(Self.chosen(&policy, c.task, c.nodes) == c.expected)
    }

    @Test("min-min places the shortest task of a class first, and classes in order")
    func minMinOrder() {
        let tasks = [Self.task(.normal, seconds: 9), Self.task(.normal, seconds: 1), Self.task(.critical, seconds: 5)]
        #expect(MinMinPolicy().placementOrder(of: tasks, on: [Self.node("n")], at: Self.now) == [2, 1, 0])
        #expect(SmartPolicy().placementOrder(of: tasks, on: [Self.node("n")], at: Self.now) == [0, 1, 2])
    }

    /// Tables where exactly one node meets every hard constraint; every policy must pick it.
    static let constrained: [Case] = [
        Case(
            name: "capacity", task: task(cpu: 3000),
            nodes: [node("full", reservedCPU: 2000), node("ok", speed: 0.5), node("small", cpu: 1000, speed: 3)], expected: "ok"),
        Case(
            name: "maximum latency", task: task(.critical, origin: "a", maxLatency: 20),
            nodes: [node("cloud", zone: "c", speed: 4, latency: ["a": 90]), node("near", zone: "b", speed: 0.5, latency: ["a": 15])],
            expected: "near"),
        Case(
            name: "labels", task: task(labels: ["gpu": "yes"]),
            nodes: [node("plain", speed: 3), node("gpu", speed: 0.5, labels: ["gpu": "yes"])], expected: "gpu"),
        Case(
            name: "zone", task: task(zone: "b"),
            nodes: [node("a1", speed: 3), node("b1", zone: "b", speed: 0.5)], expected: "b1"),
        Case(
            name: "memory", task: task(memory: 3000),
            nodes: [node("tight", idle: 1, max: 2, reservedMemory: 2000), node("roomy", memory: 8192, idle: 90, max: 400)],
            expected: "roomy"),
    ]

    @Test(
        "hard constraints hold under every policy",
        arguments: PlacementPolicies.names, constrained)
    func hardConstraints(policyName: String, c: Case) {
        var policy = PlacementPolicies.make(policyName, seed: 7)!
        for _ in 0..<5 {
            guard case .place(let node, _) = policy.place(c.task, on: c.nodes, at: Self.now) else {
                Issue.record("\(policyName) did not place \(c.name)")
                return
            }
            #expect(node == c.expected, "\(policyName) broke \(c.name)")
        }
    }

    @Test("a task that no node may take waits under every policy", arguments: PlacementPolicies.names)
    func nothingFeasible(policyName: String) {
        var policy = PlacementPolicies.make(policyName)!
        let decision = policy.place(
            Self.task(origin: "a", maxLatency: 5), on: [Self.node("far", zone: "b", latency: ["a": 50])], at: Self.now)
        #expect(decision == .wait(reason: "no live node within 5 ms of zone a"))
    }

    @Test("affinity: a key keeps its node, and losing a node moves only its keys")
    func rendezvous() {
        let nodes = (1...8).map { "node-\($0)" }
        let keys = (0..<2000).map { "camera-\($0)" }
        let before = Dictionary(uniqueKeysWithValues: keys.map { ($0, Rendezvous.ranked(nodes, for: $0)[0]) })
        let survivors = nodes.filter { $0 != "node-3" }
        var moved = 0
        for key in keys {
            let after = Rendezvous.ranked(survivors, for: key)[0]
            if before[key] == "node-3" { moved += 1 } else { #expect(after == before[key], "\(key) moved") }
        }
        // Spread: each node holds about 1/8 of the keys.
        let counts = Dictionary(grouping: before.values, by: { $0 }).mapValues(\.count)
        #expect(counts.count == 8 && counts.values.allSatisfy { (150...350).contains($0) }, "\(counts)")
        #expect(moved == counts["node-3"])
        #expect(Rendezvous.weight(key: "camera-17", node: "node-1") == Rendezvous.weight(key: "camera-17", node: "node-1"))
    }

    @Test("affinity: tasks with one key go to the same node while it has room, then to the next in its order")
    func affinityPlacement() {
        let nodes = (1...4).map { Self.node("n\($0)", cpu: 2000) }
        var placement = BatchPlacement(policy: SmartPolicy(), candidates: nodes)
        let decisions = placement.place((0..<6).map { _ in Self.task(cpu: 500, key: "cam-1") }, at: Self.now)
        let chosen = decisions.compactMap { if case .place(let node, _) = $0 { node } else { nil } }
        let order = Rendezvous.ranked(nodes.map(\.id), for: "cam-1")
        #expect(chosen == Array(repeating: order[0], count: 4) + Array(repeating: order[1], count: 2))
        if case .place(_, let score) = decisions[5] { #expect(score.terms["affinity_rank"] == 1) }
    }

    @Test("affinity: the per-key concurrency limit and rate limit hold at dispatch")
    func affinityLimits() {
        let nodes = [Self.node("n1", cpu: 64000, memory: 65536)]
        var limited = BatchPlacement(
            policy: LeastLoadedPolicy(), candidates: nodes, limiter: AffinityLimiter(maxActive: 3),
            activeByKey: ["cam-1": 1])
        let decisions = limited.place((0..<5).map { _ in Self.task(key: "cam-1") } + [Self.task(key: "cam-2")], at: Self.now)
        #expect(decisions.filter { if case .place = $0 { true } else { false } }.count == 3)
        #expect(decisions[2] == .wait(reason: "affinity key cam-1 has 3 active tasks (limit 3)"))
        if case .place = decisions[5] {} else { Issue.record("another key is not limited") }

        var limiter = AffinityLimiter(perSecond: 2)
        var placed: [Double] = []
        for step in 0..<40 {
            let t = Self.now + Double(step) * 0.1
            if limiter.refusal(for: "k", active: 0, at: t) == nil {
                limiter.record("k", at: t)
                placed.append(t)
            }
        }
        // A burst of 2, then 2 per second: 2 + 2 × 3.9 s → 9 or 10 in four seconds.
        #expect((9...10).contains(placed.count), "\(placed.count)")
    }

    @Test("a deadline no live node can meet is named at submit")
    func deadlineRisk() {
        let nodes = [Self.node("slow", speed: 0.5).info, Self.node("fast", speed: 2).info]
        #expect(PlacementConstraints.deadlineRisk(for: Self.task(seconds: 4, deadlineIn: 3), nodes: nodes, at: Self.now) == nil)
        let risk = PlacementConstraints.deadlineRisk(for: Self.task(seconds: 8, deadlineIn: 3), nodes: nodes, at: Self.now)
        #expect(risk == "the deadline is 3 s away and the fastest live node needs 4 s (network both ways and expected run time)")
        #expect(
            PlacementConstraints.deadlineRisk(for: Self.task(deadlineIn: -1), nodes: nodes, at: Self.now)
                == "the deadline had passed when the task was submitted")
        #expect(PlacementConstraints.deadlineRisk(for: Self.task(seconds: 8), nodes: nodes, at: Self.now) == nil)
    }

    @Test("smart's weights are read by name, and wrong ones are refused")
    func weights() throws {
        let w = try SmartWeights().applying(["time": 2, "energy": 0])
        #expect(w.time == 2 && w.energy == 0 && w.fit == SmartWeights().fit)
        #expect(throws: SmartWeights.Unknown.self) { try SmartWeights().applying(["speed": 1]) }
        #expect(throws: SmartWeights.Unknown.self) { try SmartWeights().applying(["time": -1]) }
    }

    @Test(
        "RFC 3339 times read and write as Foundation does", arguments: [0.0, 1_800_000_000.125, 951_782_400, 4_102_444_799.999, -86_400.5])
    func rfc3339(seconds: Double) {
        let text = RFC3339.format(seconds)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        #expect(text == formatter.string(from: Date(timeIntervalSince1970: seconds)))
        #expect(abs(RFC3339.parse(text)! - seconds) < 0.0006)
        #expect(RFC3339.parse("2026-11-23T12:00:05+01:00") == RFC3339.parse("2026-11-23T11:00:05Z"))
        for bad in [
            "2026-02-30T00:00:00Z", "2026-11-23 12:00:05Z", "2026-11-23T12:00:05", "2026-11-23T25:00:00Z", "2026-11-23T12:00:05.Z", "",
        ] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }
}
