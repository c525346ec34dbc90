import AMQPClient
import FogCore
import Foundation
import PostgresClient
import RedisClient
import TestSupport
import Testing

/// The whole system as processes: schedulers and fog nodes against the real test services.
@Suite("Scheduler and fog nodes (real processes)", .serialized, TestServices.required)
struct SystemTests {
    static let port = 18_491

    func task(_ kind: String = "noop", _ priority: String = "normal", seconds: Double? = nil, cpu: Int = 100) -> [String: Any] {
        var task: [String: Any] = ["kind": kind, "class": priority, "resources": ["cpu_millicores": cpu, "memory_mb": 32]]
        if let seconds { task["args"] = ["seconds": seconds] }
        return task
    }

    @Test("1,000 tasks across the four classes all succeed, each with its full audit trail")
    func thousandTasks() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: (1...3).map { ("sys-n\($0)", 2000, 2048) })
            let started = ContinuousClock.now
            let classes = ["critical", "high", "normal", "low"]
            let ids = try await lab.submit((0..<1_000).map { task("noop", classes[$0 % 4]) }, port: Self.port)
            #expect(ids.count == 1_000)
            try await lab.waitUntil(timeout: .seconds(120), "1,000 successes") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'succeeded'") == 1_000
            }
            let elapsed = ContinuousClock.now - started
            print("1,000 tasks on 3 fog nodes: all succeeded \(elapsed) after submission")
            // Every task: submitted, queued, started, finished, and exactly one succeeded attempt.
            #expect(
                try await lab.scalar(
                    """
                    SELECT count(*) FROM tasks t WHERE (SELECT array_agg(kind ORDER BY id) FROM task_events e WHERE e.task_id = t.id)
                        = ARRAY['submitted', 'queued', 'started', 'finished']
                    """) == 1_000)
            #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE status = 'succeeded'") == 1_000)
            #expect(try await lab.scalar("SELECT count(DISTINCT node) FROM attempts") == 3, "the work is spread over the nodes")
            #expect(try await lab.scalar("SELECT count(DISTINCT class) FROM tasks") == 4)
        }
    }

    @Test("critical tasks submitted behind 1,000 waiting low tasks start before them")
    func criticalFirst() async throws {
        try await withLab { lab in
            try lab.startScheduler("s1", port: Self.port)
            try await lab.waitForAPI(port: Self.port)
            _ = try await lab.submit((0..<1_000).map { _ in task("noop", "low") }, port: Self.port)
            let critical = try await lab.submit((0..<10).map { _ in task("noop", "critical") }, port: Self.port)
            // Only now does a node with room for 5 tasks at a time appear.
            try lab.startFogNode("prio-n1", cpu: 500, memory: 1024)
            try await lab.waitUntil(timeout: .seconds(120), "1,010 successes") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'succeeded'") == 1_010
            }
            let lastCritical = try await lab.scalar(
                """
                SELECT (extract(epoch FROM max(a.started_at)) * 1000000)::bigint FROM attempts a WHERE a.task_id = ANY($1::uuid[])
                """, [PostgresTextArray(critical.map(\.postgresText))])
            let firstLow = try await lab.scalar(
                """
                SELECT (extract(epoch FROM min(a.started_at)) * 1000000)::bigint FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.class = 3
                """)
            #expect(lastCritical <= firstLow, "every critical task started before the first low one")
        }
    }

    /// A scheduler and one fog node running 4 sleep tasks of `seconds`: the node's process and the tasks.
    func fourTasksRunning(on node: String, seconds: Double, _ lab: SchedulerLab) async throws -> (SchedulerLab.Process, [UUID]) {
        try lab.startScheduler("s1", port: Self.port)
        let process = try lab.startFogNode(node, cpu: 1000, memory: 1024)
        try await lab.waitForAPI(port: Self.port)
        try await lab.waitForNodes([node])
        let ids = try await lab.submit((0..<4).map { _ in task("sleep", seconds: seconds, cpu: 250) }, port: Self.port)
        try await lab.waitUntil(timeout: .seconds(30), "4 running tasks") {
            try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'running'") == 4
        }
        return (process, ids)
    }

    @Test("kill -9 of a fog node mid-task: its tasks succeed elsewhere within 10 s, one success each")
    func fogNodeKilled() async throws {
        try await withLab { lab in
            let (doomed, ids) = try await fourTasksRunning(on: "kill-n1", seconds: 1, lab)
            try lab.startFogNode("kill-n2", cpu: 1000, memory: 1024)
            try await lab.waitForNodes(["kill-n2"])
            lab.signal(doomed, SIGKILL)
            let killed = ContinuousClock.now
            try await lab.waitUntil(timeout: .seconds(30), "the 4 tasks to succeed on kill-n2") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'succeeded'") == 4
            }
            let recovery = ContinuousClock.now - killed
            print("fog node killed: its 4 tasks succeeded on another node \(recovery) after the kill")
            #expect(recovery <= .seconds(10))
            for id in ids {
                #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'succeeded'", [id]) == 1)
                #expect(
                    try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'lost' AND node = 'kill-n1'", [id])
                        == 1)
            }
        }
    }

    /// As Swarm does with a killed container: the same node id is back long before its
    /// heartbeat would have expired, so only its new start time tells that its tasks died.
    @Test("kill -9 of a fog node mid-task, restarted at once under its id: its tasks run again, one success each")
    func fogNodeRestartedAtOnce() async throws {
        try await withLab { lab in
            // Long enough that they still run when the node is killed.
            let (doomed, ids) = try await fourTasksRunning(on: "restart-n1", seconds: 8, lab)
            lab.signal(doomed, SIGKILL)
            let killed = ContinuousClock.now
            try lab.startFogNode("restart-n1", cpu: 1000, memory: 1024)
            try await lab.waitUntil(timeout: .seconds(60), "the 4 tasks to succeed on the restarted node") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'succeeded'") == 4
            }
            print("fog node restarted at once: its 4 tasks succeeded \(ContinuousClock.now - killed) after the kill")
            for id in ids {
                #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'succeeded'", [id]) == 1)
                #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'lost'", [id]) == 1)
            }
        }
    }

    @Test("two schedulers: kill -9 the leader, the other dispatches within the lease + 1 s")
    func leaderFailover() async throws {
        try await withLab { lab in
            let first = try lab.startScheduler("s1", port: Self.port)
            try await lab.waitForAPI(port: Self.port)
            try await lab.waitUntil(timeout: .seconds(10), "s1 to lead") { try await lab.redis.get(FogKeys.schedulerLeader) == "s1" }
            try lab.startScheduler("s2", port: Self.port + 1)
            try lab.startFogNode("lead-n1")
            try await lab.waitForAPI(port: Self.port + 1)
            try await lab.waitForNodes(["lead-n1"])
            _ = try await lab.submit([task()], port: Self.port)
            try await lab.waitUntil(timeout: .seconds(20), "the first task") { try await lab.statusCounts()["succeeded"] == 1 }

            lab.signal(first, SIGKILL)
            let killed = ContinuousClock.now
            _ = try await lab.submit([task()], port: Self.port + 1)
            try await lab.waitUntil(timeout: .seconds(20), "s2 to dispatch", poll: .milliseconds(50)) {
                try await lab.scalar("SELECT count(*) FROM attempts WHERE epoch > 1") == 1
            }
            let takeover = ContinuousClock.now - killed
            print("leader killed: the other scheduler dispatched \(takeover) later (lease 5 s)")
            #expect(takeover <= .seconds(6))
            #expect(try await lab.redis.get(FogKeys.schedulerLeader) == "s2")
            try await lab.waitUntil(timeout: .seconds(20), "the second task") { try await lab.statusCounts()["succeeded"] == 2 }
        }
    }

    @Test("PostgreSQL killed during submits: 503s, no batch half-written, every accepted task completes")
    func postgresKilled() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("pg-n1", 4000, 4096)])
            var accepted: [UUID] = []
            var refused = 0
            var other: [Int] = []
            for round in 0..<60 {
                if round == 15 { try TestServices.kill("postgres") }
                if round == 40 { try TestServices.start("postgres") }
                // Each task carries an idempotency key naming its batch, to check atomicity below.
                let tasks = (0..<5).map { index -> [String: Any] in
                    var item = task()
                    item["idempotency_key"] = "batch\(round)-\(index)"
                    return item
                }
                let result = try await lab.http(
                    "POST", "/v1/tasks", port: Self.port, body: try JSONSerialization.data(withJSONObject: ["tasks": tasks]))
                switch result.status {
                case 201:
                    accepted += (result.json["tasks"] as? [[String: Any]] ?? []).compactMap {
                        ($0["id"] as? String).flatMap { UUID(uuidString: $0) }
                    }
                case 503:
                    refused += 1
                    #expect(result.errorCode == "database_unavailable")
                default: other.append(result.status)
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            print("PostgreSQL killed: \(accepted.count) tasks accepted, \(refused) batches refused with 503")
            #expect(other.isEmpty, "only 201 or 503: \(other)")
            #expect(refused > 0)
            // A batch exists whole or not at all. (One refused while its commit was in flight may
            // exist whole: its client cannot know, which is what the idempotency key is for.)
            #expect(
                try await lab.scalar(
                    """
                    SELECT count(*) FROM (SELECT split_part(idempotency_key, '-', 1) AS batch, count(*) AS n FROM tasks GROUP BY 1) b WHERE n <> 5
                    """) == 0)
            #expect(
                try await lab.scalar(
                    "SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[])", [PostgresTextArray(accepted.map(\.postgresText))])
                    == accepted.count)
            try await lab.waitUntil(timeout: .seconds(60), "every stored task to succeed") {
                (try? await lab.scalar("SELECT count(*) FROM tasks WHERE status <> 'succeeded'")) == 0
            }
            #expect(
                try await lab.scalar(
                    "SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = t.id AND e.kind = 'submitted')"
                ) == 0)
        }
    }

    @Test("a RabbitMQ node killed during dispatch: no task is lost")
    func rabbitNodeKilled() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("mq-n1", 2000, 2048)])
            let ids = try await lab.submit((0..<300).map { _ in task("sleep", seconds: 0.05) }, port: Self.port)
            try await Task.sleep(for: .milliseconds(300))
            try TestServices.kill("rmq1")
            do {
                try await lab.waitUntil(timeout: .seconds(120), "300 successes") {
                    try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'succeeded'") == ids.count
                }
                try TestServices.start("rmq1")
            } catch {
                try? TestServices.start("rmq1")
                throw error
            }
            #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE status = 'succeeded'") == ids.count)
        }
    }

    @Test("cancel reaches the fog node through fog.cluster and kills the running process")
    func cancelKillsTheProcess() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("cancel-n1", 2000, 2048)])
            let id = try await lab.submit([task("sleep", seconds: 120)], port: Self.port)[0]
            func runningOnNode() async throws -> Int {
                guard let text = try await lab.redis.get(FogKeys.heartbeat("cancel-n1")) else { return -1 }
                return try WireFormat.decode(NodeLoad.self, from: Array(text.utf8)).running
            }
            try await lab.waitUntil(timeout: .seconds(20), "the task to run on the node") { try await runningOnNode() == 1 }
            let cancelled = ContinuousClock.now
            let result = try await lab.http("POST", "/v1/tasks/\(id)/cancel", port: Self.port)
            #expect(result.status == 200)
            #expect(result.json["status"] as? String == "cancelled")
            try await lab.waitUntil(timeout: .seconds(15), "the node to stop the process") { try await runningOnNode() == 0 }
            print("cancel: the node stopped the attempt \(ContinuousClock.now - cancelled) after the request")
            #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'cancelled'", [id]) == 1)
        }
    }

    @Test("an unreadable event goes to fog.dead with the reason, and the consumer goes on")
    func deadLetter() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("dl-n1", 2000, 2048)])
            for body in ["{not json", #"{"v": 9, "events": []}"#, #"{"v": 1, "events": [{"task_id": 5}]}"#] {
                _ = try await lab.broker.publish(Array(body.utf8), exchange: Topology.eventsExchange, routingKey: "node.bogus")
            }
            var reasons: [String] = []
            try await lab.waitUntil(timeout: .seconds(20), "3 dead letters") {
                if let delivery = try await lab.broker.get(queue: Topology.deadLetterQueue) {
                    reasons.append(delivery.properties.headers[Topology.deadReasonHeader]?.string ?? "")
                    try await lab.broker.ack(delivery)
                }
                return reasons.count == 3
            }
            #expect(reasons.contains("not a JSON object"))
            #expect(reasons.contains("unknown version 9"))
            _ = try await lab.submit([task()], port: Self.port)
            try await lab.waitUntil(timeout: .seconds(20), "a task after the bad messages") {
                try await lab.statusCounts()["succeeded"] == 1
            }
        }
    }
}
