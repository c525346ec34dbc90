import FogCore
import Foundation
import PostgresClient
import RedisClient
import TestSupport

/// The system the chaos run shoots at: two schedulers, three fog nodes (each in a cgroup of
/// its own, so that any of them can be cut off), the test services, and the load. It restarts
/// what a fault killed, as Swarm would, and tells when the cluster is whole again.
final class ChaosSystem: @unchecked Sendable {
    static let schedulers = ["chaos-s1": 18_701, "chaos-s2": 18_702]
    static let nodes = ["chaos-n1", "chaos-n2", "chaos-n3"]
    static let heartbeatTTL: Duration = .seconds(6)

    let lab: SchedulerLab
    let cuts: [String: NetworkCut]
    let marks: String
    let load: ChaosLoad
    private(set) var schedulerProcesses: [String: SchedulerLab.Process] = [:]
    private(set) var nodeProcesses: [String: SchedulerLab.Process] = [:]

    init(lab: SchedulerLab, cuts: [String: NetworkCut]) async throws {
        self.lab = lab
        self.cuts = cuts
        // The tasks run as the unprivileged task user: the file is theirs to append to.
        let folder = "\(lab.directory)/marks"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        chmod(folder, 0o755)
        marks = "\(folder)/marks.log"
        FileManager.default.createFile(atPath: marks, contents: nil)
        chmod(marks, 0o666)
        load = ChaosLoad(lab: lab, marks: marks, ports: Array(Self.schedulers.values))
        for name in Self.schedulers.keys.sorted() { try startScheduler(name) }
        for id in Self.nodes { try startNode(id) }
        for port in Self.schedulers.values { try await lab.waitForAPI(port: port) }
        try await lab.waitForNodes(Self.nodes)
    }

    func startScheduler(_ name: String) throws {
        schedulerProcesses[name] = try lab.startScheduler(name, port: Self.schedulers[name] ?? 0)
    }

    func startNode(_ id: String) throws {
        nodeProcesses[id] = try lab.startFogNode(
            id, cpu: 2000, memory: 2048, zone: "zone-\(id.suffix(1))", extra: ["FOG_ALLOWED_COMMANDS": "/bin/sh"],
            cut: cuts[id])
    }

    func node(_ id: String) throws -> SchedulerLab.Process {
        guard let process = nodeProcesses[id] else { throw LabError("no fog node \(id)") }
        return process
    }

    func scheduler(_ name: String) throws -> SchedulerLab.Process {
        guard let process = schedulerProcesses[name] else { throw LabError("no scheduler \(name)") }
        return process
    }

    /// The node running the most attempts, by its heartbeat.
    func busiestNode() async -> String {
        var best = (Self.nodes[0], -1)
        for id in Self.nodes {
            guard let text = try? await lab.redis.get(FogKeys.heartbeat(id)),
                let load = try? WireFormat.decode(NodeLoad.self, from: Array(text.utf8))
            else { continue }
            if load.running > best.1 { best = (id, load.running) }
        }
        return best.0
    }

    func leader() async -> String? { try? await lab.redis.get(FogKeys.schedulerLeader) }

    /// `rabbitmqctl` through the first node that answers.
    func rabbitmqctl(_ arguments: [String]) -> Any? {
        for node in ["rmq1", "rmq2", "rmq3"] {
            guard let output = try? TestServices.rabbitmq(node, ["rabbitmqctl", "-q"] + arguments + ["--formatter", "json"]),
                let object = try? JSONSerialization.jsonObject(with: Data(output.utf8))
            else { continue }
            return object
        }
        return nil
    }

    func runningBrokerNodes() -> Int {
        ((rabbitmqctl(["cluster_status"]) as? [String: Any])?["running_nodes"] as? [Any])?.count ?? 0
    }

    /// The RabbitMQ node (`rmqN`) that leads the fog-node queue holding the most messages.
    func busiestQueueLeader() -> (node: String, queue: String)? {
        guard let rows = rabbitmqctl(["list_queues", "-p", "fog", "name", "leader", "messages"]) as? [[String: Any]] else { return nil }
        let queues = rows.filter { ($0["name"] as? String)?.hasPrefix("fog.node.chaos-") == true }
        guard let busiest = queues.max(by: { ($0["messages"] as? Int ?? 0) < ($1["messages"] as? Int ?? 0) }),
            let leader = busiest["leader"] as? String, let name = busiest["name"] as? String
        else { return nil }
        return (String(leader.prefix { $0 != "@" }), name)
    }

    /// Messages (ready and unacknowledged) left in the chaos nodes' queues, fog.events and fog.dead.
    func leftInQueues() -> [String: Int]? {
        guard let rows = rabbitmqctl(["list_queues", "-p", "fog", "name", "messages"]) as? [[String: Any]] else { return nil }
        var left: [String: Int] = [:]
        for row in rows {
            guard let name = row["name"] as? String,
                name.hasPrefix("fog.node.chaos-") || name == Topology.eventsQueue || name == Topology.deadLetterQueue,
                let messages = row["messages"] as? Int, messages > 0
            else { continue }
            left[name] = messages
        }
        return left
    }

    /// Every process runs, both APIs answer, PostgreSQL and Redis answer, a leader holds the
    /// lease, every fog node heartbeats (and is not draining), and the three RabbitMQ nodes run
    /// in one cluster. Answers what is missing, or nil.
    func missing() async -> String? {
        for (name, process) in schedulerProcesses where !lab.isRunning(process) { return "scheduler \(name) ended" }
        for (id, process) in nodeProcesses where !lab.isRunning(process) { return "fog node \(id) ended" }
        for (name, port) in Self.schedulers where (try? await lab.http("GET", "/healthz", port: port, token: nil))?.status != 200 {
            return "scheduler \(name)'s API"
        }
        guard (try? await lab.pool.query("SELECT 1").scalar(Int.self)) == 1 else { return "PostgreSQL" }
        guard await leader() != nil else { return "a scheduler leader" }
        for id in Self.nodes {
            guard let text = try? await lab.redis.get(FogKeys.heartbeat(id)),
                let load = try? WireFormat.decode(NodeLoad.self, from: Array(text.utf8)), !load.draining
            else { return "fog node \(id)'s heartbeat" }
        }
        let running = runningBrokerNodes()
        return running == 3 ? nil : "RabbitMQ: \(running) of 3 nodes running"
    }

    /// Tasks among `ids` that are not ended yet (nil while PostgreSQL does not answer).
    func unfinished(_ ids: [UUID]) async -> Int? {
        try? await lab.pool.query(
            """
            SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[]) AND status IN ('pending', 'queued', 'running')
            """, [PostgresTextArray(ids.map(\.postgresText))]
        ).scalar(Int.self)
    }

    func succeeded(_ ids: [UUID]) async -> Int {
        (try? await lab.pool.query(
            "SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'succeeded'",
            [PostgresTextArray(ids.map(\.postgresText))]
        ).scalar(Int.self)) ?? 0
    }

    /// The attempts running on `node` now, as the store sees them.
    func runningAttempts(on node: String) async throws -> [(attempt: UUID, task: UUID)] {
        try await lab.pool.query("SELECT id::text, task_id::text FROM attempts WHERE node = $1 AND status = 'running'", [node]).rows
            .compactMap {
                guard let attempt = UUID(uuidString: try $0.decode(at: 0, as: String.self)),
                    let task = UUID(uuidString: try $0.decode(at: 1, as: String.self))
                else { return nil }
                return (attempt, task)
            }
    }

    // MARK: The partition

    struct Partition {
        let phase: Int
        let node: String
        let cutAt: Date
        let fencedAt: Date?
        let running: [(attempt: UUID, task: UUID)]
        /// Packets the cut dropped: none means the node was never cut off.
        let dropped: Int
    }

    private(set) var partition: Partition?

    /// Cuts the node running the most long attempts off from Redis and the broker, holds,
    /// heals; records when its attempts' processes were gone (the fence) for `partitionOrder`.
    func cutOff(phase: Int, for hold: Duration) async throws -> String {
        let long = await load.submit(Array(repeating: .long, count: 12), phase: phase)
        var id = Self.nodes[0]
        let waited = ContinuousClock.now
        while ContinuousClock.now - waited < .seconds(20) {
            let nodes = try await lab.pool.query(
                """
                SELECT node, count(*) FROM attempts WHERE task_id = ANY($1::uuid[]) AND status = 'running' GROUP BY node ORDER BY 2 DESC
                """, [PostgresTextArray(long.map(\.postgresText))]
            ).rows
            if let first = nodes.first, try first.decode(at: 1, as: Int.self) >= 2 {
                id = try first.decode(at: 0, as: String.self)
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let running = try await runningAttempts(on: id)
        guard let cut = cuts[id], let pid = nodeProcesses[id]?.pid, cut.processes.count > 1 else {
            throw LabError("nothing runs on \(id) to cut off")
        }
        let cutAt = Date()
        let clock = ContinuousClock.now
        try cut.cut(ports: NetworkCut.ports(of: [TestServices.nodeRedisURL, TestServices.nodeBrokerURL]))
        var fencedAt: Date?
        while ContinuousClock.now - clock < hold {
            if fencedAt == nil && cut.processes == [pid] { fencedAt = Date() }
            try await Task.sleep(for: .milliseconds(50))
        }
        let dropped = cut.dropped
        try cut.heal()
        partition = Partition(phase: phase, node: id, cutAt: cutAt, fencedAt: fencedAt, running: running, dropped: dropped)
        return "\(id) cut off with \(running.count) attempts running (\(dropped) packets dropped)."
    }

    /// DESIGN.md §7's order: the cut node's attempts were gone before any of them was placed
    /// again. Answers what was seen, and what broke the order (or shows that the cut did not
    /// happen: no packet dropped, or none of its attempts placed again).
    func partitionOrder() async throws -> (note: String, problems: [String]) {
        guard let partition else { return ("", []) }
        guard let fenced = partition.fencedAt else {
            return ("", ["\(partition.node)'s attempts still ran when the cut was healed: it never fenced"])
        }
        let attempts = try await ChaosLedger.attempts(lab, tasks: partition.running.map(\.task))
        var placedAgain: [Double] = []
        var problems: [String] = []
        for (attempt, task) in partition.running {
            guard let list = attempts[task], let index = list.firstIndex(where: { $0.id == attempt }), index + 1 < list.count else {
                continue
            }
            let next = list[index + 1]
            placedAgain.append(next.queuedAt)
            if next.queuedAt <= fenced.timeIntervalSince1970 {
                problems.append(
                    "task \(task) was placed again on \(next.node) \(String(format: "%.2f", fenced.timeIntervalSince1970 - next.queuedAt)) s before \(partition.node) fenced"
                )
            }
        }
        if partition.dropped == 0 { problems.append("the cut dropped no packet: \(partition.node) was never cut off") }
        guard let first = placedAgain.min() else {
            return (
                "",
                problems + [
                    "none of \(partition.node)'s \(partition.running.count) attempts was placed again: the scheduler never saw it lost"
                ]
            )
        }
        let cut = partition.cutAt.timeIntervalSince1970
        let note = String(
            format: "Order: its attempts' processes were gone %.1f s after the cut; the first of %d placed again %.1f s after it.",
            fenced.timeIntervalSince1970 - cut, placedAgain.count, first - cut)
        return (note, problems)
    }
}
