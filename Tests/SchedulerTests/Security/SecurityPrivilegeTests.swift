import AMQPClient
import BrokerTopology
import FogCore
import Foundation
import PostgresClient
import RedisClient
import TestSupport
import Testing

/// Someone holding one edge host's credentials, or a reader's token (THREATS.md: who is
/// trusted with what): forged outcomes, a node's user reaching beyond its queues and keys, a
/// reader looking at secrets. After each, the same processes still run and later tasks succeed.
@Suite("Security: credentials and roles (real processes)", .serialized, TestServices.required)
struct SecurityPrivilegeTests {
    static let port = 18_631

    @Test("attack: node B, with its own credentials, reports on an attempt placed on node A: ignored and logged, A's outcome counts")
    func forgedEvents() async throws {
        try await withLab { lab in
            let scheduler = try lab.startScheduler("s1", port: Self.port)
            let credentialsA = try lab.nodeUser("sec-a")
            let credentialsB = try lab.nodeUser("sec-b")
            let nodeA = try lab.startFogNode("sec-a", extra: credentialsA.merging(["FOG_NODE_LABELS": "site=a"]) { $1 })
            let nodeB = try lab.startFogNode("sec-b", extra: credentialsB.merging(["FOG_NODE_LABELS": "site=b"]) { $1 })
            try await lab.waitForAPI(port: Self.port)
            try await lab.waitForNodes(["sec-a", "sec-b"])
            let ids = try await lab.submit(
                [["kind": "sleep", "args": ["seconds": 4], "constraints": ["labels": ["site": "a"]], "max_attempts": 1]],
                port: Self.port)
            try await lab.waitUntil(timeout: .seconds(20), "the task to run on sec-a") {
                try await lab.scalar("SELECT count(*) FROM attempts WHERE task_id = $1 AND status = 'running' AND node = 'sec-a'", [ids[0]])
                    == 1
            }
            let attempt: UUID = try await lab.pool.query("SELECT id FROM attempts WHERE task_id = $1", [ids[0]]).rows[0].decode(at: 0)
            let forger = try await AMQPConnection.connect(try AMQPConfiguration(urls: try #require(credentialsB["FOG_BROKER_URL"])))
            defer { forger.close() }
            func forged(claiming node: String) -> [UInt8] {
                WireFormat.encode(
                    EventBatch(events: [
                        TaskEvent(
                            taskID: ids[0], attemptID: attempt, node: node, kind: .finished,
                            at: Date().timeIntervalSince1970, outcome: .failed, exitCode: 1, reason: "forged")
                    ]))
            }
            // B under its own routing key, claiming to be A: dropped by the scheduler.
            #expect(
                try await forger.publish(forged(claiming: "sec-a"), exchange: Topology.eventsExchange, routingKey: "node.sec-b") == .ack)
            // B honest about who it is: the store ignores it, the attempt is A's.
            #expect(
                try await forger.publish(forged(claiming: "sec-b"), exchange: Topology.eventsExchange, routingKey: "node.sec-b") == .ack)
            // B under A's routing key: the broker refuses it (a topic permission).
            let impersonated = try? await forger.publish(
                forged(claiming: "sec-a"), exchange: Topology.eventsExchange, routingKey: "node.sec-a")
            #expect(impersonated != .ack, "the broker took an event under another node's routing key")
            let task = try await lab.ended(ids[0], port: Self.port)
            #expect(task["status"] as? String == "succeeded", "\(task)")
            #expect(lab.lastAttempt(task)["reason"] as? String != "forged")
            #expect(
                try await lab.scalar(
                    """
                    SELECT count(*) FROM task_events WHERE attempt_id = $1 AND kind = 'ignored' AND detail->>'reported_by' = 'sec-b'
                    """, [attempt]) == 1)
            #expect(lab.log(scheduler).contains("not sent by the node they name"))
            try await lab.expectServing(port: Self.port, [scheduler, nodeA, nodeB])
        }
    }

    /// Expects `body` to be refused by the broker or Redis for want of permission.
    func expectRefused(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(what) was allowed", sourceLocation: sourceLocation)
        } catch {
            let text = "\(error)"
            #expect(
                text.contains("ACCESS_REFUSED") || text.contains("403") || text.contains("NOPERM") || text.contains("returned"),
                "\(what): \(text)", sourceLocation: sourceLocation)
        }
    }

    /// A fresh broker connection for each attempt: a refusal closes its channel.
    func broker(_ url: String, _ body: (AMQPConnection) async throws -> Void) async throws {
        let connection = try await AMQPConnection.connect(try AMQPConfiguration(urls: url))
        defer { connection.close() }
        try await body(connection)
    }

    @Test(
        "attack: a node's users publish a task, read fog.events and fog.dead, consume or declare another node's queues, and write the scheduler's or another node's Redis keys"
    )
    func leastPrivilege() async throws {
        try await withLab { lab in
            let scheduler = try lab.startScheduler("s1", port: Self.port)
            let credentials = try lab.nodeUser("priv-a")
            let node = try lab.startFogNode("priv-a", extra: credentials)
            let other = try lab.startFogNode("priv-b")
            try await lab.waitForAPI(port: Self.port)
            try await lab.waitForNodes(["priv-a", "priv-b"])
            try await lab.waitUntil(timeout: .seconds(10), "priv-b's queues") {
                (try? await lab.broker.queueInfo(Topology.nodeQueue(NodeID(rawValue: "priv-b")!, .normal))) != nil
            }
            let task = WireFormat.encode(
                TaskMessage(
                    taskID: UUID(), attemptID: UUID(), attempt: 1, epoch: 999, node: "priv-b",
                    spec: TaskSpec(name: "injected", command: ["/bin/sh", "-c", "id"])))
            for (who, url) in [
                ("its own user", try #require(credentials["FOG_BROKER_URL"])), ("the shared node user", TestServices.nodeBrokerURL),
            ] {
                await expectRefused("\(who) publishing a task") {
                    try await broker(url) { connection in
                        let outcome = try await connection.publish(task, exchange: Topology.tasksExchange, routingKey: "priv-b.normal")
                        if outcome != .ack { throw AMQPError(.publishRefused, "returned \(outcome)") }
                    }
                }
                await expectRefused("\(who) reading fog.events") {
                    try await broker(url) { _ = try await $0.get(queue: Topology.eventsQueue) }
                }
                await expectRefused("\(who) reading fog.dead") {
                    try await broker(url) { _ = try await $0.get(queue: Topology.deadLetterQueue) }
                }
                await expectRefused("\(who) declaring a node queue") {
                    try await broker(url) { try await TopologyDeclarations.declareNodeQueues(NodeID(rawValue: "priv-a")!, on: $0) }
                }
                await expectRefused("\(who) binding a queue to fog.tasks") {
                    try await broker(url) { connection in
                        try await connection.declareQueue("fog.control.priv-a.spy", durable: false, exclusive: true, autoDelete: true)
                        try await connection.bindQueue("fog.control.priv-a.spy", to: Topology.tasksExchange, routingKey: "priv-b.normal")
                    }
                }
            }
            await expectRefused("its own user consuming another node's queue") {
                try await broker(try #require(credentials["FOG_BROKER_URL"])) { _ = try await $0.get(queue: "fog.node.priv-b.normal") }
            }

            let redis = RedisConnection(configuration: try RedisConfiguration(url: try #require(credentials["FOG_REDIS_URL"])))
            defer { redis.close() }
            await expectRefused("writing another node's registration") {
                try await redis.hashSet(FogKeys.node("priv-b"), ["cpu_millicores": "1"])
            }
            await expectRefused("writing another node's heartbeat") { _ = try await redis.set(FogKeys.heartbeat("priv-b"), to: "{}") }
            await expectRefused("taking the scheduler's lease") { _ = try await redis.set(FogKeys.schedulerLeader, to: "me") }
            await expectRefused("reading the scheduler's lease") { _ = try await redis.get(FogKeys.schedulerLeader) }
            await expectRefused("removing nodes from fog:nodes") { _ = try await redis.setRemove(FogKeys.nodes, "priv-b") }
            await expectRefused("touching clusterctl's keys") { _ = try await redis.set("rabbitmq:cluster:master", to: "me") }
            _ = try await redis.set(FogKeys.heartbeat("priv-a"), to: "{}", expiry: .seconds(1))  // its own: allowed
            let shared = RedisConnection(configuration: try RedisConfiguration(url: TestServices.nodeRedisURL))
            defer { shared.close() }
            await expectRefused("the shared node user taking the scheduler's lease") {
                _ = try await shared.set(FogKeys.schedulerLeader, to: "me")
            }
            let clusterctl = RedisConnection(configuration: try RedisConfiguration(url: TestServices.clusterctlRedisURL))
            defer { clusterctl.close() }
            await expectRefused("clusterctl's user touching fog:* keys") { _ = try await clusterctl.get(FogKeys.schedulerLeader) }
            #expect(try await lab.scalar("SELECT count(*) FROM tasks WHERE name = 'injected'") == 0)
            try await lab.expectServing(port: Self.port, [scheduler, node, other])
        }
    }

    @Test("attack: a reader's token reads a task's env and stdin")
    func readerRedaction() async throws {
        try await withLab { lab in
            let (scheduler, nodes) = try await lab.startSystem(port: Self.port, nodes: [("read-n1", 2000, 2048)])
            let node = nodes[0]
            let secret = "s3cr3t-\(UUID().uuidString)"
            let ids = try await lab.submit(
                [["kind": "noop", "env": ["API_KEY": secret], "stdin": Data(secret.utf8).base64EncodedString()]],
                port: Self.port)
            for path in ["/v1/tasks/\(ids[0])", "/v1/tasks"] {
                let read = try await lab.http("GET", path, port: Self.port, token: SchedulerLab.readToken)
                #expect(read.status == 200)
                let text = String(decoding: read.body, as: UTF8.self)
                #expect(
                    !text.contains(secret) && !text.contains(Data(secret.utf8).base64EncodedString()),
                    "\(path) shows the secret to a reader")
                #expect(text.contains("<redacted>"))
            }
            let written = try await lab.http("GET", "/v1/tasks/\(ids[0])", port: Self.port)
            #expect((written.json["env"] as? [String: String])?["API_KEY"] == secret, "the submitter's own token sees it")
            let refused = try await lab.http(
                "POST", "/v1/tasks", port: Self.port, body: Data(#"{"kind": "noop"}"#.utf8), token: SchedulerLab.readToken)
            #expect(refused.status == 403)
            try await lab.expectServing(port: Self.port, [scheduler, node])
        }
    }
}
