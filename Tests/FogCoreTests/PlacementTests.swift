import FogCore
import Testing

@Suite("Placement")
struct PlacementTests {
    func node(
        _ id: String, cpu: Int = 2000, memory: Int = 2048, zone: String = "a", labels: [String: String] = [:],
        latency: [String: Double] = [:], reservedCPU: Int = 0, reservedMemory: Int = 0
    ) -> NodeCandidate {
        NodeCandidate(
            info: FogNodeInfo(
                id: id, capacity: Resources(cpuMillicores: cpu, memoryMB: memory, storageMB: 1000), zone: zone,
                labels: labels, latencyMS: latency, startedAt: 0),
            reserved: Resources(cpuMillicores: reservedCPU, memoryMB: reservedMemory))
    }

    func task(cpu: Int = 500, memory: Int = 256, constraints: TaskSpec.Constraints = .init()) -> TaskSpec {
        TaskSpec(name: "t", kind: .noop, resources: Resources(cpuMillicores: cpu, memoryMB: memory), constraints: constraints)
    }

    @Test(
        "least-loaded picks the node least used after placement",
        arguments: [
            ([0, 1500], "n1"), ([1500, 0], "n2"), ([500, 500], "n1"),
        ])
    func leastLoaded(reserved: [Int], expected: String) {
        var policy = LeastLoadedPolicy()
        let nodes = [node("n1", reservedCPU: reserved[0]), node("n2", reservedCPU: reserved[1])]
        guard case .place(let chosen, let score) = policy.place(task(), on: nodes) else {
            Issue.record("expected a placement")
            return
        }
        #expect(chosen == expected)
        #expect(score.policy == "least-loaded")
        #expect(score.terms["cpu_utilisation_after"] != nil)
    }

    @Test(
        "hard constraints are never broken",
        arguments: [
            (TaskSpec.Constraints(zone: "b"), "n2"),
            (TaskSpec.Constraints(labels: ["gpu": "yes"]), "n2"),
            (TaskSpec.Constraints(origin: "b", maxLatencyMS: 10), "n2"),
        ])
    func constraints(constraints: TaskSpec.Constraints, expected: String) {
        var policy = LeastLoadedPolicy()
        let nodes = [node("n1", zone: "a", latency: ["b": 40]), node("n2", cpu: 1000, zone: "b", labels: ["gpu": "yes"], reservedCPU: 400)]
        guard case .place(let chosen, _) = policy.place(task(constraints: constraints), on: nodes) else {
            Issue.record("expected a placement")
            return
        }
        #expect(chosen == expected)
    }

    @Test("a task waits, with a reason, when no node has room")
    func noRoom() {
        var policy = LeastLoadedPolicy()
        let decision = policy.place(task(cpu: 1500), on: [node("n1", reservedCPU: 1000)])
        guard case .wait(let reason) = decision else {
            Issue.record("expected to wait")
            return
        }
        #expect(reason.contains("no node has room"))
        #expect(policy.place(task(), on: []) == .wait(reason: "no live fog node"))
    }

    @Test("a task no registered node could ever hold is named at submit")
    func neverFits() {
        let nodes = [node("n1").info, node("n2", cpu: 4000, memory: 1024).info]
        #expect(PlacementConstraints.neverFits(Resources(cpuMillicores: 3000, memoryMB: 512), nodes: nodes).isEmpty)
        #expect(
            PlacementConstraints.neverFits(Resources(cpuMillicores: 8000, memoryMB: 512), nodes: nodes)["resources.cpu_millicores"] != nil)
        #expect(PlacementConstraints.neverFits(Resources(cpuMillicores: 3000, memoryMB: 2048), nodes: nodes)["resources"] != nil)
        #expect(PlacementConstraints.neverFits(Resources(cpuMillicores: 99_000, memoryMB: 1), nodes: []).isEmpty)
    }
}

@Suite("Wire format and settings")
struct WireFormatTests {
    @Test("messages round-trip and unknown versions are refused")
    func versions() throws {
        let event = TaskEvent(taskID: .init(), attemptID: .init(), node: "n1", kind: .finished, at: 1, outcome: .succeeded)
        let decoded = try WireFormat.decode(EventBatch.self, from: WireFormat.encode(EventBatch(events: [event])))
        #expect(decoded.events == [event])
        #expect(throws: WireFormat.Unreadable("unknown version 2")) {
            try WireFormat.decode(EventBatch.self, from: Array(#"{"v": 2, "events": []}"#.utf8))
        }
        #expect(throws: WireFormat.Unreadable("not a JSON object")) { try WireFormat.decode(EventBatch.self, from: Array("{oops".utf8)) }
    }

    @Test("a node's registration round-trips through its Redis hash, and a bad field is named")
    func nodeInfo() throws {
        let info = FogNodeInfo(
            id: "n1", capacity: Resources(cpuMillicores: 1500, memoryMB: 512, storageMB: 10), zone: "a",
            labels: ["gpu": "no"], latencyMS: ["b": 12.5], power: .init(idleWatts: 5, maxWatts: 20, batteryPercent: 80), startedAt: 7)
        #expect(try FogNodeInfo(id: "n1", hashFields: info.hashFields) == info)
        var broken = info.hashFields
        broken["cpu_millicores"] = "lots"
        #expect(throws: WireFormat.Unreadable.self) { try FogNodeInfo(id: "n1", hashFields: broken) }
    }

    @Test(
        "settings name the variable that is wrong",
        arguments: [
            ("FOG_X", "5s", 5_000), ("FOG_X", "250ms", 250), ("FOG_X", "1.5", 1_500), ("FOG_X", "2m", 120_000),
        ])
    func durations(name: String, value: String, milliseconds: Int64) throws {
        #expect(try Settings([name: value]).duration(name, default: .zero) == .milliseconds(milliseconds))
    }

    @Test("an invalid setting is an error that names it")
    func invalidSetting() {
        #expect(throws: Settings.Invalid.self) { try Settings(["FOG_PORT": "eighty"]).int("FOG_PORT", default: 1) }
        #expect(throws: Settings.Invalid.self) { try Settings(["FOG_D": "soon"]).duration("FOG_D", default: .seconds(1)) }
        #expect(throws: Settings.Invalid.self) { try Settings(["FOG_L": "a=1,b"]).map("FOG_L") }
    }
}

@Suite("Baseline placement policies")
struct BaselinePolicyTests {
    func nodes(_ count: Int, roomless: Set<Int> = []) -> [NodeCandidate] {
        (0..<count).map { index in
            NodeCandidate(
                info: FogNodeInfo(
                    id: "n\(index)", capacity: Resources(cpuMillicores: 1000, memoryMB: 1024), zone: "a", startedAt: Double(index)),
                reserved: roomless.contains(index) ? Resources(cpuMillicores: 1000, memoryMB: 0) : .zero, order: index)
        }
    }

    let task = TaskSpec(name: "t", kind: .noop, resources: Resources(cpuMillicores: 100, memoryMB: 10))

    func placements(_ policy: inout some PlacementPolicy, _ nodes: [NodeCandidate], times: Int) -> [String] {
        (0..<times).compactMap { _ in
            if case .place(let node, _) = policy.place(task, on: nodes) { return node }
            return nil
        }
    }

    @Test("round-robin takes the nodes in turn and skips those without room")
    func roundRobin() {
        var policy = RoundRobinPolicy()
        #expect(placements(&policy, nodes(3), times: 5) == ["n0", "n1", "n2", "n0", "n1"])
        var skipping = RoundRobinPolicy()
        #expect(placements(&skipping, nodes(3, roomless: [1]), times: 4) == ["n0", "n2", "n0", "n2"])
    }

    @Test("fcfs takes the first registered node that fits")
    func firstFit() {
        var policy = FirstFitPolicy()
        #expect(placements(&policy, nodes(3, roomless: [0]), times: 3) == ["n1", "n1", "n1"])
    }

    @Test("random is repeatable for a seed and spreads over the nodes", arguments: [UInt64(1), 42, 2026])
    func random(seed: UInt64) {
        var first = RandomPolicy(seed: seed)
        var second = RandomPolicy(seed: seed)
        let a = placements(&first, nodes(4), times: 200)
        #expect(a == placements(&second, nodes(4), times: 200))
        #expect(Set(a).count == 4)
        var roomless = RandomPolicy(seed: seed)
        #expect(!placements(&roomless, nodes(4, roomless: [2]), times: 100).contains("n2"))
    }
}
