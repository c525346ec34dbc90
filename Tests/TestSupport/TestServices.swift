import Foundation
import Spawn
import Testing

/// The real RabbitMQ, Redis and PostgreSQL started by `scripts/services.sh --profile test`,
/// found through the `FOG_TEST_*` variables that `make test` exports. Without them the
/// integration tests are skipped, with this reason shown.
public enum TestServices {
    /// The trait of every integration test: skipped, with the reason, when the services are absent.
    public static var required: ConditionTrait {
        .enabled(if: available, "FOG_TEST_* not set: run `make test`, which starts the test services")
    }

    private static let environment = ProcessInfo.processInfo.environment

    public static var available: Bool {
        [
            "FOG_TEST_BROKER_URL", "FOG_TEST_REDIS_URL", "FOG_TEST_DATABASE_URL", "FOG_TEST_SERVICES_DIR", "FOG_TEST_NODE_BROKER_URL",
            "FOG_TEST_NODE_REDIS_URL", "FOG_TEST_CLUSTERCTL_REDIS_URL",
        ]
        .allSatisfy { environment[$0]?.isEmpty == false }
    }

    /// The three broker URLs, rmq1 first.
    public static var brokerURLs: [String] {
        (environment["FOG_TEST_BROKER_URL"] ?? "").split(separator: ",").map(String.init)
    }

    /// An `amqps://` URL of rmq1's TLS listener, with the test CA and a client certificate.
    public static var brokerTLSURL: String { environment["FOG_TEST_BROKER_TLS_URL"] ?? "" }
    /// The test CA and certificates (`ca.pem`, `server.pem`, `client.pem`, `client.key`).
    public static var tlsDirectory: String { environment["FOG_TEST_TLS_DIR"] ?? "" }

    public static var redisURL: String { environment["FOG_TEST_REDIS_URL"] ?? "" }
    /// The fog nodes' shared users (least privilege: their queues, fog.events, their keys).
    public static var nodeBrokerURL: String { environment["FOG_TEST_NODE_BROKER_URL"] ?? "" }
    public static var nodeRedisURL: String { environment["FOG_TEST_NODE_REDIS_URL"] ?? "" }
    /// clusterctl's Redis user (rabbitmq:* keys only).
    public static var clusterctlRedisURL: String { environment["FOG_TEST_CLUSTERCTL_REDIS_URL"] ?? "" }
    public static var databaseURL: String { environment["FOG_TEST_DATABASE_URL"] ?? "" }
    public static var servicesDirectory: String { environment["FOG_TEST_SERVICES_DIR"] ?? "" }

    /// The repository root, found from this file's place in it.
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Kills a service abruptly (SIGKILL by its recorded PID): `rmq1`...`rmq3`, `redis`, `postgres`.
    public static func kill(_ service: String) throws {
        try runServicesScript("kill-node", service)
    }

    /// Starts a service again and waits until it is up: `redis` with its data (its append-only
    /// file), `redis-empty` without.
    public static func start(_ service: String) throws {
        try runServicesScript("start-node", service)
    }

    /// Runs a RabbitMQ CLI tool (`rabbitmqctl`, `rabbitmq-queues`) against node `rmqN`.
    /// `directory` is a profile's state folder (the test profile's unless given).
    public static func rabbitmq(_ node: String, _ arguments: [String], in directory: String = servicesDirectory) throws -> String {
        let env = "\(directory)/rmq/\(node)/env.sh"
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try run(["/bin/bash", "-c", ". '\(env)' && \(quoted)"])
    }

    /// The quorum members of `queue` in vhost fog, as RabbitMQ reports them.
    public static func quorumMembers(_ queue: String, via node: String = "rmq1", in directory: String = servicesDirectory) throws
        -> [String]
    {
        let output = try rabbitmq(
            node, ["rabbitmqctl", "-q", "list_queues", "-p", "fog", "name", "members", "--formatter", "json"], in: directory)
        guard let data = output.data(using: .utf8),
            let rows = try JSONSerialization.jsonObject(with: data) as? [[String: Any]],
            let row = rows.first(where: { $0["name"] as? String == queue })
        else { return [] }
        return row["members"] as? [String] ?? []
    }

    /// A broker and a Redis user for fog node `id` alone (`services.sh node-user`): its
    /// FOG_BROKER_URL and FOG_REDIS_URL.
    public static func nodeUser(_ id: String) throws -> (brokerURL: String, redisURL: String) {
        let output = try runServicesScript("node-user", id)
        var values: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        return (values["FOG_BROKER_URL"] ?? "", values["FOG_REDIS_URL"] ?? "")
    }

    public static func deleteNodeUser(_ id: String) throws {
        try runServicesScript("node-user-delete", id)
    }

    @discardableResult
    private static func runServicesScript(_ command: String, _ service: String) throws -> String {
        let script = repositoryRoot.appendingPathComponent("scripts/services.sh").path
        return try run([script, command, service, "--profile", "test"])
    }

    /// Runs argv, returns stdout; throws with stderr when it exits non-zero.
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String] = [:]) throws -> String {
        let output = try CommandRunner.runBlocking(
            argv, environment: environment.merging(["FOG_SVC_STATE_DIR": servicesDirectory]) { a, _ in a })
        guard output.succeeded else { throw CommandFailed(argv: argv, status: output.status, stderr: output.stderr) }
        return output.stdout
    }

    public struct CommandFailed: Error, CustomStringConvertible {
        public let argv: [String]
        public let status: Int32
        public let stderr: String

        public init(argv: [String], status: Int32, stderr: String) {
            self.argv = argv
            self.status = status
            self.stderr = stderr
        }

        public var description: String { "\(argv.joined(separator: " ")) exited \(status): \(stderr)" }
    }
}
