import AMQPClient
import BrokerTopology
import FogCore
import Foundation
import PostgresClient
import RedisClient
import TestSupport
import Testing

/// State lost or poisoned in Redis and messages gone from the broker (THREATS.md: "state lost
/// in Redis is never fatal", "every attempt has a backstop"): the fencing epoch, purged and
/// misaddressed messages, cancelled deliveries that wait in a node's buffer.
@Suite("Security: fencing and backstops (real processes)", .serialized, TestServices.required)
struct SecurityFencingTests {
    static let port = 18_621

    func noop(_ count: Int) -> [[String: Any]] { (0..<count).map { _ in ["kind": "noop"] } }

    func allSucceed(_ ids: [UUID], _ lab: SchedulerLab, within timeout: Duration, _ what: String) async throws {
        try await lab.waitUntil(timeout: timeout, what) {
            try await lab.scalar(
                "SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'succeeded'",
                [PostgresTextArray(ids.map(\.postgresText))]) == ids.count
        }
    }

    func leader(_ lab: SchedulerLab) async throws -> String? { try await lab.redis.get(FogKeys.schedulerLeader) }

    @Test(
        "attack: fog:scheduler:epoch deleted, Redis restarted empty, then the leader killed; then an epoch of 2^63-1 and another leader change"
    )
    func epochLostThenPoisoned() async throws {
        try await withLab { lab in
            let s1 = try lab.startScheduler("s1", port: Self.port)
            try await lab.waitForAPI(port: Self.port)
            try await lab.waitUntil(timeout: .seconds(10), "s1 to lead") { try await leader(lab) == "s1" }
            let s2 = try lab.startScheduler("s2", port: Self.port + 1)
            let node = try lab.startFogNode("fence-n1")
            try await lab.waitForAPI(port: Self.port + 1)
            try await lab.waitForNodes(["fence-n1"])
            try await allSucceed(try await lab.submit(noop(5), port: Self.port), lab, within: .seconds(30), "tasks before the attack")
            let fenceBefore = try await lab.scalar("SELECT epoch FROM scheduler_fence")

            _ = try await lab.redis.delete(FogKeys.schedulerEpoch)
            try TestServices.kill("redis")
            try TestServices.start("redis-empty")
            try await lab.waitForNodes(["fence-n1"], timeout: .seconds(30))
            try await lab.waitUntil(timeout: .seconds(30), "a leader after Redis came back") { try await leader(lab) != nil }
            let survivor = try await leader(lab) == "s1" ? (s2, Self.port + 1) : (s1, Self.port)
            lab.signal(try await leader(lab) == "s1" ? s1 : s2, SIGKILL)
            try await allSucceed(
                try await lab.submit(noop(5), port: survivor.1), lab, within: .seconds(30),
                "tasks after the epoch was lost and the leader killed")
            let fenceAfterLoss = try await lab.scalar("SELECT epoch FROM scheduler_fence")
            #expect(fenceAfterLoss > fenceBefore, "the fence only goes up: \(fenceBefore) then \(fenceAfterLoss)")

            // A value no INCR can take, then another leader change.
            try await lab.redis.set(FogKeys.schedulerEpoch, to: "9223372036854775807")
            let s3 = try lab.startScheduler("s3", port: Self.port + 2)
            try await lab.waitForAPI(port: Self.port + 2)
            lab.signal(survivor.0, SIGKILL)
            try await lab.waitUntil(timeout: .seconds(30), "s3 to lead") { try await leader(lab) == "s3" }
            try await allSucceed(
                try await lab.submit(noop(5), port: Self.port + 2), lab, within: .seconds(30),
                "tasks after a poisoned epoch and a leader change")
            #expect(try await lab.scalar("SELECT epoch FROM scheduler_fence") > fenceAfterLoss)
            #expect(
                try await lab.redis.get(FogKeys.schedulerEpoch) == String(try await lab.scalar("SELECT epoch FROM scheduler_fence")),
                "Redis mirrors the fence again")
            try await lab.expectServing(port: Self.port + 2, [s3, node])
        }
    }

    @Test("attack: the fence raised behind the leader's back: the stale leader resigns its lease at once and a current leader dispatches")
    func staleLeaderResigns() async throws {
        try await withLab { lab in
            let (scheduler, nodes) = try await lab.startSystem(port: Self.port, nodes: [("stale-n1", 2000, 2048)])
            let node = nodes[0]
            try await lab.waitUntil(timeout: .seconds(10), "s1 to lead") { try await leader(lab) == "s1" }
            let raised = try await lab.scalar("UPDATE scheduler_fence SET epoch = epoch + 100 RETURNING epoch")
            let started = ContinuousClock.now
            try await allSucceed(try await lab.submit(noop(5), port: Self.port), lab, within: .seconds(30), "tasks after the fence moved")
            print("fencing: a stale leader resigned and dispatch resumed \(ContinuousClock.now - started) after the fence moved")
            #expect(try await lab.scalar("SELECT max(epoch) FROM attempts") > raised)
            #expect(lab.log(scheduler).contains("giving up the leader lease"))
            try await lab.expectServing(port: Self.port, [scheduler, node])
        }
    }

    @Test("attack: a node's queues purged while attempts wait in them: placed again within FOG_QUEUED_TIMEOUT")
    func purgedQueue() async throws {
        try await withLab { lab in
            let scheduler = try lab.startScheduler("s1", port: Self.port, extra: ["FOG_QUEUED_TIMEOUT": "5s"])
            try await lab.waitForAPI(port: Self.port)
            // A node that heartbeats but never consumes (the test writes its keys): its queues fill.
            let ghost = FogNodeInfo(
                id: "ghost", capacity: Resources(cpuMillicores: 8000, memoryMB: 8192), zone: "zone-a",
                startedAt: Date().timeIntervalSince1970)
            func heartbeat(draining: Bool) async throws {
                try await lab.redis.hashSet(FogKeys.node("ghost"), ghost.hashFields)
                _ = try await lab.redis.setAdd(FogKeys.nodes, "ghost")
                let load = NodeLoad(used: .zero, running: 0, at: Date().timeIntervalSince1970, draining: draining)
                try await lab.redis.set(
                    FogKeys.heartbeat("ghost"), to: String(decoding: WireFormat.encode(load), as: UTF8.self), expiry: .seconds(30))
            }
            try await heartbeat(draining: false)
            let ids = try await lab.submit(noop(6), port: Self.port)
            try await lab.waitUntil(timeout: .seconds(20), "the attempts to be published to ghost") {
                try await lab.scalar("SELECT count(*) FROM attempts WHERE node = 'ghost' AND published_at IS NOT NULL") == 6
            }
            var purged = 0
            for priority in PriorityClass.allCases {
                purged += try await lab.broker.purgeQueue(Topology.nodeQueue(NodeID(rawValue: "ghost")!, priority))
            }
            // The six went as one batch or as several messages, however the rounds fell.
            #expect((1...6).contains(purged), "purged \(purged) messages holding the 6 attempts")
            // The ghost stays alive (so its attempts are not taken back as a lost node's) but takes no more work.
            try await heartbeat(draining: true)
            let node = try lab.startFogNode("real-n1")
            try await lab.waitForNodes(["real-n1"])
            let purgedAt = ContinuousClock.now
            try await allSucceed(ids, lab, within: .seconds(40), "the purged attempts to run elsewhere")
            print("backstop: attempts purged from their queue ran on another node \(ContinuousClock.now - purgedAt) later (bound 5 s)")
            #expect(try await lab.scalar("SELECT count(*) FROM attempts WHERE node = 'ghost' AND status = 'lost'") == 6)
            #expect(try await lab.scalar("SELECT count(*) FROM task_events WHERE kind = 'queued_backstop'") == 6)
            try await lab.expectServing(port: Self.port, [scheduler, node])
        }
    }

    /// Without a scheduler: the node still runs, and a later attempt published to it succeeds
    /// (its finished event arrives on fog.events, which nobody else reads here).
    func expectNodeServing(_ node: SchedulerLab.Process, _ id: NodeID, _ lab: SchedulerLab) async throws {
        #expect(lab.isRunning(node), "\(lab.log(node))")
        let later = TaskMessage(
            taskID: UUID(), attemptID: UUID(), attempt: 1, epoch: 1, node: id.rawValue, spec: TaskSpec(name: "later", kind: .noop))
        _ = try await lab.broker.publish(
            WireFormat.encode(later), exchange: Topology.tasksExchange, routingKey: Topology.nodeRoutingKey(id, .critical))
        var succeeded = false
        try await lab.waitUntil(timeout: .seconds(40), "a later attempt to succeed on the node") {  // after what runs there
            while let delivery = try await lab.broker.get(queue: Topology.eventsQueue) {
                let events = (try? WireFormat.decode(EventBatch.self, from: delivery.body).events) ?? []
                succeeded = succeeded || events.contains { $0.attemptID == later.attemptID && $0.outcome == .succeeded }
                try await lab.broker.ack(delivery)
            }
            return succeeded
        }
    }

    @Test("attack: a message for another node in this node's queue is not acked and dropped unseen: it goes to fog.dead")
    func misaddressed() async throws {
        try await withLab { lab in
            let node = try lab.startFogNode("addr-n1")
            try await lab.waitForNodes(["addr-n1"])
            let id = try #require(NodeID(rawValue: "addr-n1"))
            try await TopologyDeclarations.declareNodeQueues(id, on: lab.broker)
            _ = try await lab.broker.purgeQueue(Topology.deadLetterQueue)
            let message = TaskMessage(
                taskID: UUID(), attemptID: UUID(), attempt: 1, epoch: 1, node: "someone-else",
                spec: TaskSpec(name: "elsewhere", kind: .noop))
            #expect(
                try await lab.broker.publish(
                    WireFormat.encode(message), exchange: Topology.tasksExchange,
                    routingKey: Topology.nodeRoutingKey(id, .normal)) == .ack)
            var dead: AMQPDelivery?
            try await lab.waitUntil(timeout: .seconds(20), "the message in fog.dead") {
                dead = try await lab.broker.get(queue: Topology.deadLetterQueue)
                return dead != nil
            }
            let body = try WireFormat.decode(TaskMessage.self, from: try #require(dead).body)
            #expect(body.attemptID == message.attemptID)
            try await lab.broker.ack(try #require(dead))
            #expect(lab.log(node).contains("placed on node someone-else"))
            try await expectNodeServing(node, id, lab)
        }
    }

    @Test("attack: a cancel while the attempt waits in a node's buffer: the delivery is settled, not left holding a prefetch slot")
    func cancelledWhileBuffered() async throws {
        try await withLab { lab in
            let node = try lab.startFogNode("buf-n1", cpu: 250, memory: 1024)
            try await lab.waitForNodes(["buf-n1"])
            let id = try #require(NodeID(rawValue: "buf-n1"))
            try await TopologyDeclarations.declareNodeQueues(id, on: lab.broker)
            let sleep = TaskSpec(name: "s", kind: .sleep, args: .init(seconds: 25), resources: Resources(cpuMillicores: 250, memoryMB: 32))
            let running = TaskMessage(taskID: UUID(), attemptID: UUID(), attempt: 1, epoch: 1, node: "buf-n1", spec: sleep)
            let waiting = TaskMessage(taskID: UUID(), attemptID: UUID(), attempt: 1, epoch: 1, node: "buf-n1", spec: sleep)
            for message in [running, waiting] {
                _ = try await lab.broker.publish(
                    WireFormat.encode(message), exchange: Topology.tasksExchange, routingKey: Topology.nodeRoutingKey(id, .normal))
            }
            func unacked() throws -> Int {
                let listing = try TestServices.rabbitmq(
                    "rmq1", ["rabbitmqctl", "-q", "list_queues", "-p", "fog", "name", "messages_unacknowledged"])
                let row = listing.split(separator: "\n").first { $0.hasPrefix("fog.node.buf-n1.normal") }
                return row.flatMap { Int($0.split(whereSeparator: \.isWhitespace).last ?? "") } ?? -1
            }
            try await lab.waitUntil(timeout: .seconds(20), "the second attempt to wait in the buffer, unacked") { try unacked() == 1 }
            let cancel = ControlMessage(kind: .cancel, node: "buf-n1", taskID: waiting.taskID, attemptID: waiting.attemptID)
            _ = try await lab.broker.publish(
                WireFormat.encode(cancel), exchange: Topology.clusterExchange, routingKey: "", mandatory: false)
            // The broker's counters lag up to its statistics interval (5 s); the first attempt
            // still runs long after that, so a 0 here can only be the cancelled one settled.
            try await lab.waitUntil(timeout: .seconds(14), "the cancelled delivery to be settled while the first still runs") {
                try unacked() == 0
            }
            #expect(lab.log(node).contains("dropping attempt \(waiting.attemptID): cancelled"))
            #expect(try await lab.broker.queueInfo(Topology.nodeQueue(id, .normal)).messageCount == 0, "nothing went back to the queue")
            try await expectNodeServing(node, id, lab)
        }
    }
}
