import AMQPClient
import BrokerTopology
import FogCore
import Foundation
import PostgresClient
import RedisClient
import TestSupport
import Testing

/// The fog node's own guarantees: limits, room, priority, acks at start, allow-list. Some tests
/// publish attempts straight to the node's queues (no scheduler), and read its events.
@Suite("Fog node (real process)", .serialized, TestServices.required)
struct FogNodeSystemTests {
    static let port = 18_501

    func task(
        _ kind: String, seconds: Double? = nil, millicores: Int? = nil, mb: Int? = nil, cpu: Int = 100, memory: Int = 64,
        timeout: Double? = nil
    ) -> [String: Any] {
        var args: [String: Any] = [:]
        if let seconds { args["seconds"] = seconds }
        if let millicores { args["millicores"] = millicores }
        if let mb { args["mb"] = mb }
        var task: [String: Any] = [
            "kind": kind, "args": args, "resources": ["cpu_millicores": cpu, "memory_mb": memory], "max_attempts": 1,
        ]
        if let timeout { task["timeout_s"] = timeout }
        return task
    }

    func attempt(_ id: UUID, _ lab: SchedulerLab) async throws -> [String: Any] {
        let result = try await lab.http("GET", "/v1/tasks/\(id)", port: Self.port)
        return (result.json["attempts"] as? [[String: Any]])?.last ?? [:]
    }

    func waitEnded(_ ids: [UUID], _ lab: SchedulerLab, timeout: Duration = .seconds(60)) async throws {
        try await lab.waitUntil(timeout: timeout, "\(ids.count) tasks to end") {
            try await lab.scalar(
                "SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[]) AND status NOT IN ('pending', 'queued', 'running')",
                [PostgresTextArray(ids.map(\.postgresText))]) == ids.count
        }
    }

    @Test("memory: twice the limit ends resource_exceeded, and the node lives on")
    func memoryLimit() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("lim-n1", 2000, 2048)])
            let ids = try await lab.submit([task("alloc", seconds: 2, mb: 128, memory: 64)], port: Self.port)
            try await waitEnded(ids, lab)
            let attempt = try await attempt(ids[0], lab)
            #expect(attempt["status"] as? String == "resource_exceeded", "\(attempt)")
            print("memory: \(attempt["reason"] ?? "-"), peak \(attempt["peak_memory_mb"] ?? "-") MB")
            let after = try await lab.submit([task("noop")], port: Self.port)
            try await waitEnded(after, lab)
            #expect(try await lab.statusCounts()["succeeded"] == 1, "the node still runs tasks")
        }
    }

    @Test("without control groups, RSS polling ends a task over its memory limit")
    func memoryLimitByPolling() async throws {
        try await withLab { lab in
            try lab.startScheduler("s1", port: Self.port)
            try lab.startFogNode("poll-n1", cpu: 2000, memory: 2048, extra: ["FOG_CGROUPS": "false"])
            try await lab.waitForAPI(port: Self.port)
            try await lab.waitForNodes(["poll-n1"])
            let ids = try await lab.submit([task("alloc", seconds: 3, mb: 256, memory: 64)], port: Self.port)
            try await waitEnded(ids, lab)
            let attempt = try await attempt(ids[0], lab)
            #expect(attempt["status"] as? String == "resource_exceeded", "\(attempt)")
            #expect((attempt["reason"] as? String)?.contains("resident memory") == true)
        }
    }

    @Test("CPU: a task limited to 250 millicores that wants a whole core uses at most 300 over 5 s")
    func cpuLimit() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("lim-n1", 2000, 2048)])
            let ids = try await lab.submit([task("cpu", seconds: 5, millicores: 1000, cpu: 250)], port: Self.port)
            try await waitEnded(ids, lab)
            let attempt = try await attempt(ids[0], lab)
            #expect(attempt["status"] as? String == "succeeded", "\(attempt)")
            let cpu = try #require(attempt["cpu_seconds"] as? Double)
            print("cpu: a 250 m task that wanted 1000 m used \(Int(cpu / 5 * 1000)) m over 5 s")
            #expect(cpu / 5 <= 0.300)
        }
    }

    @Test("timeout: the whole process tree goes, even a child that ignores SIGTERM")
    func timeoutKillsTree() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("lim-n1", 2000, 2048)])
            let marker = "61.\(Int.random(in: 100...999))"
            var item: [String: Any] = [
                "command": ["/bin/sh", "-c", "sh -c 'trap \"\" TERM; sleep \(marker)' & wait"], "timeout_s": 1, "max_attempts": 1,
            ]
            item["name"] = "stubborn"
            let ids = try await lab.submit([item], port: Self.port)
            try await waitEnded(ids, lab, timeout: .seconds(30))
            let attempt = try await attempt(ids[0], lab)
            #expect(attempt["status"] as? String == "timed_out", "\(attempt)")
            let survivors = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { Int($0) != nil }.filter { pid in
                ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains(marker)
            }
            #expect(survivors.isEmpty, "processes left: \(survivors)")
        }
    }

    @Test("a node running as root runs tasks as the unprivileged task user, in a directory of their own")
    func taskUser() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("user-n1", 2000, 2048)])
            let ids = try await lab.submit(
                [["command": ["/bin/sh", "-c", "id -u; pwd; echo data > out.txt && cat out.txt"]]], port: Self.port)
            try await waitEnded(ids, lab)
            let attempt = try await attempt(ids[0], lab)
            #expect(attempt["status"] as? String == "succeeded", "\(attempt)")
            let lines = ((attempt["stdout_tail"] as? String) ?? "").split(separator: "\n").map(String.init)
            if geteuid() == 0 { #expect(lines.first == "65534", "\(lines)") }
            #expect(lines.dropFirst().first?.contains((attempt["id"] as? String ?? "?").lowercased()) == true, "\(lines)")
            #expect(lines.last == "data")
        }
    }

    @Test("SIGTERM drains: a task past FOG_DRAIN_TIMEOUT is interrupted and retried elsewhere, and the node exits 0")
    func drain() async throws {
        try await withLab { lab in
            try lab.startScheduler("s1", port: Self.port)
            try await lab.waitForAPI(port: Self.port)
            let draining = try lab.startFogNode("drain-n2", cpu: 1000, memory: 1024, extra: ["FOG_DRAIN_TIMEOUT": "1s"])
            try await lab.waitForNodes(["drain-n2"])
            let ids = try await lab.submit([task("sleep", seconds: 3)], port: Self.port)
            try await lab.waitUntil(timeout: .seconds(20), "the task to run") { try await lab.statusCounts()["running"] == 1 }
            try lab.startFogNode("drain-n3", cpu: 1000, memory: 1024)
            try await lab.waitForNodes(["drain-n3"])
            let stoppedAt = ContinuousClock.now
            #expect(lab.signal(draining, SIGTERM) == 0, "\(lab.log(draining))")
            print("drain: the node exited \(ContinuousClock.now - stoppedAt) after SIGTERM (drain timeout 1 s)")
            try await waitEnded(ids, lab, timeout: .seconds(30))
            let statuses = try await lab.pool.query("SELECT status, node FROM attempts WHERE task_id = $1 ORDER BY number", [ids[0]]).rows
                .map {
                    "\(try $0.decode(at: 0, as: String.self))@\(try $0.decode(at: 1, as: String.self))"
                }
            #expect(statuses == ["interrupted@drain-n2", "succeeded@drain-n3"])
            #expect(try await lab.scalar("SELECT failures FROM tasks WHERE id = $1", [ids[0]]) == 0, "an interruption is not a failure")
        }
    }

    @Test("a command outside FOG_ALLOWED_COMMANDS is refused without running")
    func allowList() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("lim-n1", 2000, 2048)])
            let flag = "/tmp/fog-allowlist-\(UUID().uuidString)"
            let ids = try await lab.submit([["command": ["/usr/bin/touch", flag], "max_attempts": 1]], port: Self.port)
            try await waitEnded(ids, lab)
            let attempt = try await attempt(ids[0], lab)
            #expect(attempt["status"] as? String == "rejected")
            #expect((attempt["reason"] as? String)?.contains("FOG_ALLOWED_COMMANDS") == true)
            #expect(!FileManager.default.fileExists(atPath: flag))
        }
    }

    /// Publishes attempts straight to a node's class queue, as a scheduler would (declaring
    /// the node's queues first, as the scheduler does: a node may not).
    func publish(_ spec: TaskSpec, node: String, _ lab: SchedulerLab) async throws -> UUID {
        try await TopologyDeclarations.declareNodeQueues(try #require(NodeID(rawValue: node)), on: lab.broker)
        let message = TaskMessage(taskID: UUID(), attemptID: UUID(), attempt: 1, epoch: 1, node: node, spec: spec)
        let outcome = try await lab.broker.publish(
            WireFormat.encode(message), exchange: Topology.tasksExchange,
            routingKey: Topology.nodeRoutingKey(NodeID(rawValue: node)!, spec.priority))
        #expect(outcome == .ack)
        return message.attemptID
    }

    /// Reads fog.events until `count` finished events arrived; answers every event.
    func events(finished count: Int, _ lab: SchedulerLab, timeout: Duration = .seconds(60)) async throws -> [TaskEvent] {
        var events: [TaskEvent] = []
        try await lab.waitUntil(timeout: timeout, "\(count) finished events", poll: .milliseconds(20)) {
            while let delivery = try await lab.broker.get(queue: Topology.eventsQueue) {
                events += try WireFormat.decode(EventBatch.self, from: delivery.body).events
                try await lab.broker.ack(delivery)
            }
            return events.filter { $0.kind == .finished }.count >= count
        }
        return events
    }

    @Test("room for 2: never more than 2 run, and a critical task queued later starts before the waiting low ones")
    func roomAndPriority() async throws {
        try await withLab { lab in
            try lab.startFogNode("room-n1", cpu: 500, memory: 1024)
            try await lab.waitForNodes(["room-n1"])
            let sleep = TaskSpec(
                name: "s", kind: .sleep, args: .init(seconds: 1), priority: .low, resources: Resources(cpuMillicores: 250, memoryMB: 32))
            var lows: [UUID] = []
            for _ in 0..<10 { lows.append(try await publish(sleep, node: "room-n1", lab)) }
            try await Task.sleep(for: .milliseconds(300))
            var urgent = sleep
            urgent.priority = .critical
            let critical = try await publish(urgent, node: "room-n1", lab)
            let events = try await self.events(finished: 11, lab)
            // Replay the starts and ends in time order: at most 2 at once.
            var running = 0
            var most = 0
            for event in events.sorted(by: { ($0.at, $0.kind == .finished ? 0 : 1) < ($1.at, $1.kind == .finished ? 0 : 1) }) {
                running += event.kind == .started ? 1 : -1
                most = max(most, running)
            }
            #expect(most == 2)
            let starts = Dictionary(events.filter { $0.kind == .started }.map { ($0.attemptID, $0.at) }) { a, _ in a }
            let criticalStart = try #require(starts[critical])
            #expect(
                lows.compactMap { starts[$0] }.filter { $0 < criticalStart }.count == 2, "only the 2 lows already running started first")
        }
    }

    /// Publishes attempts as one `TaskBatch` message, as the scheduler does for several in a round.
    func publishBatch(_ specs: [TaskSpec], node: String, _ lab: SchedulerLab, stray: String? = nil) async throws -> [UUID] {
        let id = try #require(NodeID(rawValue: node))
        try await TopologyDeclarations.declareNodeQueues(id, on: lab.broker)
        let messages = specs.enumerated().map { index, spec in
            TaskMessage(taskID: UUID(), attemptID: UUID(), attempt: 1, epoch: 1, node: index == 0 ? (stray ?? node) : node, spec: spec)
        }
        var properties = AMQPProperties.json
        properties.type = TaskBatch.messageType
        let outcome = try await lab.broker.publish(
            OutgoingMessage(
                exchange: Topology.tasksExchange, routingKey: Topology.nodeRoutingKey(id, specs[0].priority),
                body: WireFormat.encode(TaskBatch(tasks: messages)), properties: properties))
        #expect(outcome == .ack)
        return messages.map(\.attemptID)
    }

    func unacked(_ queue: String) throws -> [String] {
        let listing = try TestServices.rabbitmq(
            "rmq1", ["rabbitmqctl", "-q", "list_queues", "-p", "fog", "name", "messages_unacknowledged", "messages"])
        let row = try #require(listing.split(separator: "\n").first { $0.hasPrefix(queue) })
        return row.split(whereSeparator: \.isWhitespace).dropFirst().map(String.init)
    }

    @Test("a batch of attempts in one message: each runs once, and the delivery is acked when the last has started")
    func aBatchIsSettledWhole() async throws {
        try await withLab { lab in
            try lab.startFogNode("batch-n1", cpu: 500, memory: 1024)
            try await lab.waitForNodes(["batch-n1"])
            let sleep = TaskSpec(name: "s", kind: .sleep, args: .init(seconds: 7), resources: Resources(cpuMillicores: 250, memoryMB: 32))
            let ids = try await publishBatch(Array(repeating: sleep, count: 4), node: "batch-n1", lab)
            // Room for two: two run, two wait, and the one delivery stays unacked meanwhile (a
            // quorum queue updates these counts every few seconds: look until the first two end).
            let published = ContinuousClock.now
            var waiting: [String] = []
            while ContinuousClock.now - published < .seconds(6) {
                waiting = try unacked("fog.node.batch-n1.normal")
                if waiting == ["1", "1"] { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(waiting == ["1", "1"], "one delivery, unacked (messages counts it too): \(waiting)")
            let events = try await self.events(finished: 4, lab, timeout: .seconds(60))
            #expect(Set(events.filter { $0.kind == .started }.map(\.attemptID)) == Set(ids))
            #expect(events.filter { $0.kind == .finished }.count == 4, "each attempt ran once")
            #expect(events.filter { $0.kind == .finished }.allSatisfy { $0.outcome == .succeeded })
            try await lab.waitUntil(timeout: .seconds(10), "the batch acked") { try unacked("fog.node.batch-n1.normal") == ["0", "0"] }
        }
    }

    @Test("attack: a batch naming another node, or holding more than 100 attempts, goes to fog.dead and runs nothing")
    func hostileBatches() async throws {
        try await withLab { lab in
            try lab.startFogNode("batch-n2", cpu: 1000, memory: 1024)
            try await lab.waitForNodes(["batch-n2"])
            let noop = TaskSpec(name: "n", kind: .noop)
            _ = try await publishBatch([noop, noop], node: "batch-n2", lab, stray: "someone-else")
            _ = try await publishBatch(Array(repeating: noop, count: TaskBatch.maxTasks + 1), node: "batch-n2", lab)
            var dead = 0
            try await lab.waitUntil(timeout: .seconds(20), "two dead letters") {
                while let delivery = try await lab.broker.get(queue: Topology.deadLetterQueue) {
                    dead += 1
                    try await lab.broker.ack(delivery)
                }
                return dead >= 2
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await lab.broker.get(queue: Topology.eventsQueue) == nil, "nothing ran, nothing was reported")
        }
    }

    @Test("a no-op reports started and finished in one message")
    func aNoOpIsReportedInOneMessage() async throws {
        try await withLab { lab in
            try lab.startFogNode("noop-n1", cpu: 1000, memory: 1024)
            try await lab.waitForNodes(["noop-n1"])
            let id = try await publish(TaskSpec(name: "n", kind: .noop), node: "noop-n1", lab)
            var first: [TaskEvent] = []
            try await lab.waitUntil(timeout: .seconds(20), "the no-op's events") {
                guard let delivery = try await lab.broker.get(queue: Topology.eventsQueue) else { return false }
                first = try WireFormat.decode(EventBatch.self, from: delivery.body).events
                try await lab.broker.ack(delivery)
                return true
            }
            #expect(first.map(\.attemptID) == [id, id])
            #expect(first.map(\.kind) == [.started, .finished], "the first message holds both events: \(first.map(\.kind))")
        }
    }

    @Test("the delivery is acked at start: a long task holds no unacked message")
    func ackedAtStart() async throws {
        try await withLab { lab in
            try lab.startFogNode("ack-n1", cpu: 1000, memory: 1024)
            try await lab.waitForNodes(["ack-n1"])
            let spec = TaskSpec(name: "long", kind: .sleep, args: .init(seconds: 8), resources: Resources(cpuMillicores: 100, memoryMB: 32))
            _ = try await publish(spec, node: "ack-n1", lab)
            var started = false
            try await lab.waitUntil(timeout: .seconds(20), "the started event") {
                if let delivery = try await lab.broker.get(queue: Topology.eventsQueue) {
                    started = try WireFormat.decode(EventBatch.self, from: delivery.body).events.contains { $0.kind == .started }
                    try await lab.broker.ack(delivery)
                }
                return started
            }
            try await Task.sleep(for: .milliseconds(500))
            let listing = try TestServices.rabbitmq(
                "rmq1", ["rabbitmqctl", "-q", "list_queues", "-p", "fog", "name", "messages_unacknowledged", "messages"])
            let row = try #require(listing.split(separator: "\n").first { $0.hasPrefix("fog.node.ack-n1.normal") })
            #expect(row.split(whereSeparator: \.isWhitespace).dropFirst().map(String.init) == ["0", "0"], "\(row)")
        }
    }
}

@Suite("Fog node self-fencing (real processes)", .serialized, TestServices.required)
struct FogNodeFencingTests {
    static let port = 18_511

    @Test("SIGSTOP for 10 s, then SIGCONT: the node fences, its late events are ignored, each success is recorded once")
    func stoppedNode() async throws {
        try await withLab { lab in
            let frozen = try await lab.startSystem(port: Self.port, nodes: [("stop-n1", 1000, 1024)]).nodes[0]
            let ids = try await lab.submit(
                (0..<2).map { _ in ["kind": "sleep", "args": ["seconds": 3], "resources": ["cpu_millicores": 250]] },
                port: Self.port)
            try await lab.waitUntil(timeout: .seconds(20), "2 running tasks") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'running'") == 2
            }
            try lab.startFogNode("stop-n2", cpu: 1000, memory: 1024)
            try await lab.waitForNodes(["stop-n2"])
            lab.signal(frozen, SIGSTOP)
            try await Task.sleep(for: .seconds(10))
            lab.signal(frozen, SIGCONT)
            try await lab.waitUntil(timeout: .seconds(30), "both tasks to succeed") {
                try await lab.statusCounts()["succeeded"] == 2
            }
            // The frozen node's attempts were taken back; whatever it reports afterwards is ignored.
            try await lab.waitUntil(timeout: .seconds(20), "the frozen node's late events to be ignored") {
                try await lab.scalar(
                    "SELECT count(*) FROM task_events e JOIN attempts a ON a.id = e.attempt_id WHERE e.kind = 'ignored' AND a.node = 'stop-n1'"
                ) >= 2
            }
            for id in ids {
                #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'succeeded'", [id]) == 1)
                #expect(
                    try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'lost' AND node = 'stop-n1'", [id])
                        == 1)
            }
            #expect(lab.log(frozen).contains("fenced"))
            try await lab.waitForNodes(["stop-n1"], timeout: .seconds(10))
        }
    }

    /// DESIGN.md §7's order: a node that cannot renew its heartbeat stops its attempts before
    /// the key can expire and the scheduler place them elsewhere, even while a Redis call of
    /// its heartbeat is blocked on a dead link (longer than the TTL).
    @Test(
        "cut off from Redis and the broker mid-task: the node kills its attempt before its heartbeat key expires, and takes work again once healed"
    )
    func cutOffNode() async throws {
        let cut = try NetworkCut(name: "fog_cut_fence_n1")
        defer { cut.remove() }
        try await withLab { lab in
            try lab.startScheduler("s1", port: Self.port)
            let node = try lab.startFogNode("cut-n1", cpu: 1000, memory: 1024, cut: cut)
            try await lab.waitForAPI(port: Self.port)
            try await lab.waitForNodes(["cut-n1"])
            let id = try await lab.submit(
                [["kind": "sleep", "args": ["seconds": 60], "resources": ["cpu_millicores": 250], "max_attempts": 1]],
                port: Self.port)[0]
            try await lab.waitUntil(timeout: .seconds(20), "the task to run") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE id = $1 AND status = 'running'", [id]) == 1
                    && cut.processes.count > 1
            }
            // Cut just after a renewal, so that the next one is the call that blocks.
            var ttl = try await lab.redis.timeToLive(FogKeys.heartbeat("cut-n1")) ?? .zero
            try await lab.waitUntil(timeout: .seconds(10), "a fresh heartbeat", poll: .milliseconds(20)) {
                let now = try await lab.redis.timeToLive(FogKeys.heartbeat("cut-n1")) ?? .zero
                defer { ttl = now }
                return now > ttl
            }
            let expiry = ContinuousClock.now + ttl
            try cut.cut(ports: NetworkCut.ports(of: [TestServices.nodeRedisURL, TestServices.nodeBrokerURL]))
            try await lab.waitUntil(timeout: .seconds(30), "the attempt's process to end", poll: .milliseconds(50)) {
                cut.processes == [node.pid]
            }
            let killed = ContinuousClock.now
            print("cut off: the node killed its attempt \(expiry - killed) before its heartbeat key expired")
            #expect(
                killed < expiry, "the attempt ran on after the heartbeat key expired: the scheduler may already have placed it elsewhere")
            #expect(cut.dropped > 0)
            #expect(lab.log(node).contains("fenced"))
            try await lab.waitUntil(timeout: .seconds(30), "the scheduler to take the attempt back") {
                try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'lost'", [id]) == 1
            }
            try cut.heal()
            try await lab.waitForNodes(["cut-n1"], timeout: .seconds(60))
            let after = try await lab.submit([["kind": "noop"]], port: Self.port)[0]
            try await lab.waitUntil(timeout: .seconds(60), "a task after the heal") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE id = $1 AND status = 'succeeded'", [after]) == 1
            }
            #expect(lab.isRunning(node))
        }
    }

    /// Attempts placed on a node just as it froze reach it while it sleeps; the scheduler takes
    /// them back once the heartbeat expires. Woken, the node must not run them: the node's
    /// life ended with its fence, and each message says which life of the node it was placed in.
    @Test("SIGSTOP with attempts just placed on it, past the TTL, then SIGCONT: it runs none of those the scheduler took back")
    func stoppedNodeRunsNothingTakenBack() async throws {
        try await withLab { lab in
            let marks = "\(lab.directory)/marks.log"
            FileManager.default.createFile(atPath: marks, contents: nil)
            chmod(marks, 0o666)
            let frozen = try await lab.startSystem(
                port: Self.port, nodes: [("wake-n1", 2000, 2048)],
                nodeExtra: ["FOG_ALLOWED_COMMANDS": "/bin/sh"]
            ).nodes[0]
            func tasks(_ count: Int, sleep: Double) -> [[String: Any]] {
                let script = #"echo "$FOG_TASK_ID $FOG_ATTEMPT_ID $FOG_NODE_ID $(date +%s.%N)" >> "$1"; sleep "# + String(sleep)
                return (0..<count).map { _ in
                    ["command": ["/bin/sh", "-c", script, "mark", marks], "resources": ["cpu_millicores": 100, "memory_mb": 32]]
                }
            }
            // Some run when it freezes (they end while it sleeps, and wake it up first)...
            var ids = try await lab.submit(tasks(3, sleep: 1), port: Self.port)
            try await lab.waitUntil(timeout: .seconds(20), "3 running tasks") {
                ((try? String(contentsOfFile: marks, encoding: .utf8)) ?? "").split(separator: "\n").count == 3
            }
            lab.signal(frozen, SIGSTOP)
            let stoppedAt = Date().timeIntervalSince1970
            // ...and some are placed on it while it is frozen (its heartbeat has not expired yet).
            ids += try await lab.submit(tasks(10, sleep: 0.2), port: Self.port)
            try await lab.waitUntil(timeout: .seconds(10), "10 attempts placed on the frozen node") {
                try await lab.scalar(
                    "SELECT count(*) FROM attempts WHERE node = 'wake-n1' AND status = 'queued' AND published_at IS NOT NULL") == 10
            }
            try lab.startFogNode("wake-n2", extra: ["FOG_ALLOWED_COMMANDS": "/bin/sh"])
            try await lab.waitUntil(timeout: .seconds(30), "the scheduler to take them back") {
                try await lab.scalar("SELECT count(*) FROM attempts WHERE node = 'wake-n1' AND status = 'lost'") == 13
            }
            lab.signal(frozen, SIGCONT)
            try await lab.waitUntil(timeout: .seconds(60), "the 13 tasks to succeed") { try await lab.statusCounts()["succeeded"] == 13 }
            try await lab.waitForNodes(["wake-n1"], timeout: .seconds(20))
            try await Task.sleep(for: .seconds(3))  // what the woken node might still start
            let lines = ((try? String(contentsOfFile: marks, encoding: .utf8)) ?? "").split(separator: "\n").map {
                $0.split(separator: " ")
            }
            // Attempts placed on it again after it came back may run there; those taken back may not.
            let takenBack = Set(
                try await lab.pool.query("SELECT id::text FROM attempts WHERE node = 'wake-n1' AND status = 'lost'").rows.map {
                    try $0.decode(at: 0, as: String.self)
                })
            let late = lines.filter { $0.count == 4 && takenBack.contains(String($0[1])) && (Double($0[3]) ?? 0) > stoppedAt }
            #expect(late.isEmpty, "the woken node ran \(late.count) attempts the scheduler had taken back")
            #expect(lines.count == 16, "the 3 that ran when it froze ran twice, the others once: \(lines.count) runs")
            for id in ids {
                #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'succeeded'", [id]) == 1)
            }
            #expect(lab.isRunning(frozen))
        }
    }
}
