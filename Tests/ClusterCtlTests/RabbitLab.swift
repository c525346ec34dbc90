import AMQPClient
import FogCore
import Foundation
import RedisClient
import Spawn
import TestSupport
import Testing

/// Three RabbitMQ nodes of their own (`scripts/services.sh --profile lab`: ports 5792-5794,
/// epmd 4374) that clusterctl tests cluster, kill, wipe and restart, each node with a real
/// `clusterctl run` beside it. Redis is the test services' one, database 1.
final class RabbitLab: @unchecked Sendable {
    let directory: String
    let redisURL: String
    private(set) var agents: [String: pid_t] = [:]

    /// Fast timings so that the tests wait seconds, not minutes.
    static let heartbeatInterval = 3, heartbeatTTL = 9, masterLease = 5, queueReplicationInterval = 5
    /// rmq1's Erlang distribution port in services.sh's lab profile; rmq2 and rmq3 use +1, +2.
    static let distributionPort: UInt16 = 25792

    init() throws {
        directory = URL(fileURLWithPath: TestServices.servicesDirectory).deletingLastPathComponent().appendingPathComponent("lab").path
        // The test services' Redis, database 1: the lab's keys never meet anyone else's.
        let url = TestServices.clusterctlRedisURL
        redisURL = url.hasSuffix("/0") ? String(url.dropLast()) + "1" : url + "/1"
    }

    static func node(_ name: String) -> String { "\(name)@localhost" }

    func script(_ arguments: String...) throws {
        let script = TestServices.repositoryRoot.appendingPathComponent("scripts/services.sh").path
        let output = try CommandRunner.runBlocking(
            [script] + arguments + ["--profile", "lab"], environment: ["FOG_SVC_STATE_DIR": directory])
        guard output.succeeded else {
            throw TestServices.CommandFailed(argv: arguments, status: output.status, stderr: output.stderr)
        }
    }

    /// A fresh lab: wiped nodes, started unclustered, and no clusterctl keys in Redis.
    func start() async throws {
        try script("wipe")
        try script("up")
        let redis = try await connectRedis()
        defer { redis.close() }
        for key in try await redis.scan(matching: "rabbitmq:*") { try await redis.delete(key) }
    }

    func stop() throws {
        for name in agents.keys { killAgent(name) }
        try script("down")
    }

    func connectRedis() async throws -> RedisConnection {
        try await RedisConnection.connect(RedisConfiguration(url: redisURL))
    }

    /// `clusterctl run` for node `name`, with that node's environment (cookie, epmd port).
    func startAgent(_ name: String) throws {
        let clusterctl = TestServices.repositoryRoot.appendingPathComponent(".build/debug/clusterctl").path
        let env = "\(directory)/rmq/\(name)/env.sh"
        let command =
            ". '\(env)' && exec '\(clusterctl)' run --node \(Self.node(name)) --redis-url '\(redisURL)'"
            + " --heartbeat-interval \(Self.heartbeatInterval) --heartbeat-ttl \(Self.heartbeatTTL) --master-lease \(Self.masterLease)"
            + " --queue-replication-interval \(Self.queueReplicationInterval)"
        let pid = try CommandRunner.spawnDetached(["/bin/bash", "-c", command], logFile: "\(directory)/rmq/\(name)/clusterctl.log")
        agents[name] = pid
        // Recorded, so that `services.sh down --profile lab` stops it even if this test process dies.
        try "\(pid)\n".write(toFile: "\(directory)/rmq/\(name)/clusterctl.pid", atomically: true, encoding: .utf8)
    }

    func killAgent(_ name: String) {
        guard let pid = agents.removeValue(forKey: name) else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        try? FileManager.default.removeItem(atPath: "\(directory)/rmq/\(name)/clusterctl.pid")
    }

    func startNode(_ name: String) throws { try script("start-node", name) }
    func killNode(_ name: String) throws { try script("kill-node", name) }
    func stopNode(_ name: String) throws { try script("stop-node", name) }
    func wipeNode(_ name: String) throws { try script("wipe-node", name) }

    /// A RabbitMQ CLI tool against node `name`, with the lab's environment.
    @discardableResult
    func rabbitmq(_ name: String, _ arguments: [String]) throws -> String {
        try TestServices.rabbitmq(name, arguments, in: directory)
    }

    func clusterStatus(_ name: String) -> RabbitClusterStatus? {
        (try? rabbitmq(name, ["rabbitmqctl", "-q", "cluster_status", "--formatter", "json"])).flatMap { try? RabbitClusterStatus(json: $0) }
    }

    /// The broker URLs of the three nodes, with the lab's generated password.
    func brokerURLs() throws -> [String] {
        let env = try String(contentsOfFile: "\(directory)/env", encoding: .utf8)
        guard let line = env.split(separator: "\n").first(where: { $0.contains("FOG_LAB_BROKER_URL=") }),
            let start = line.firstIndex(of: "'")
        else { throw TestServices.CommandFailed(argv: ["env"], status: 1, stderr: "no FOG_LAB_BROKER_URL in the lab's env") }
        return line[line.index(after: start)...].dropLast().split(separator: ",").map(String.init)
    }

    /// The vhost and user that the broker URLs name, created once the cluster is formed.
    func createBrokerUser(on name: String) throws {
        let endpoint = try AMQPEndpoint(url: try brokerURLs()[0])
        try rabbitmq(name, ["rabbitmqctl", "-q", "add_vhost", endpoint.vhost])
        try rabbitmq(name, ["rabbitmqctl", "-q", "add_user", endpoint.user, endpoint.password])
        try rabbitmq(name, ["rabbitmqctl", "-q", "set_permissions", "-p", endpoint.vhost, endpoint.user, ".*", ".*", ".*"])
    }

    /// Quorum members of `queue` in the fog vhost, as RabbitMQ reports them.
    func quorumMembers(_ queue: String, via name: String) -> Set<String> {
        Set((try? TestServices.quorumMembers(queue, via: name, in: directory)) ?? [])
    }

    /// Polls `condition` until it holds or `timeout` passes; returns how long it took, or nil.
    func waitFor(_ timeout: Duration, every interval: Duration = .milliseconds(250), _ condition: () async throws -> Bool) async rethrows
        -> Duration?
    {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if try await condition() { return ContinuousClock.now - start }
            try? await Task.sleep(for: interval)
        }
        return nil
    }

    /// True when every node in `names` runs and sees exactly `names` as its running cluster.
    func formed(_ names: [String]) -> Bool {
        let expected = Set(names.map(Self.node))
        return names.allSatisfy { clusterStatus($0)?.runningNodes == expected }
    }
}
