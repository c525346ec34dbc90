import Foundation
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
        ["FOG_TEST_BROKER_URL", "FOG_TEST_REDIS_URL", "FOG_TEST_DATABASE_URL", "FOG_TEST_SERVICES_DIR"]
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

    /// Starts a service again and waits until it is up.
    public static func start(_ service: String) throws {
        try runServicesScript("start-node", service)
    }

    /// Runs a RabbitMQ CLI tool (`rabbitmqctl`, `rabbitmq-queues`) against node `rmqN`.
    public static func rabbitmq(_ node: String, _ arguments: [String]) throws -> String {
        let env = "\(servicesDirectory)/rmq/\(node)/env.sh"
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try run(["/bin/bash", "-c", ". '\(env)' && \(quoted)"])
    }

    /// The quorum members of `queue` in vhost fog, as RabbitMQ reports them.
    public static func quorumMembers(_ queue: String) throws -> [String] {
        let output = try rabbitmq("rmq1", ["rabbitmqctl", "-q", "list_queues", "-p", "fog", "name", "members", "--formatter", "json"])
        guard let data = output.data(using: .utf8),
            let rows = try JSONSerialization.jsonObject(with: data) as? [[String: Any]],
            let row = rows.first(where: { $0["name"] as? String == queue })
        else { return [] }
        return row["members"] as? [String] ?? []
    }

    private static func runServicesScript(_ command: String, _ service: String) throws {
        let script = repositoryRoot.appendingPathComponent("scripts/services.sh").path
        _ = try run([script, command, service, "--profile", "test"])
    }

    /// Runs argv, returns stdout; throws with stderr when it exits non-zero. Output goes
    /// through files, not pipes: a daemon started by the script must not hold them open.
    /// (posix_spawn and waitpid, since Foundation's Process.waitUntilExit was seen to hang here.)
    @discardableResult
    public static func run(_ argv: [String]) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fog-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outPath = directory.appendingPathComponent("stdout").path
        let errPath = directory.appendingPathComponent("stderr").path

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        var environment = ProcessInfo.processInfo.environment
        environment["FOG_SVC_STATE_DIR"] = servicesDirectory
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, cEnvironment)
        guard spawned == 0 else {
            throw CommandFailed(argv: argv, status: spawned, stderr: "cannot start: \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            throw CommandFailed(argv: argv, status: exited ? code : -1, stderr: err)
        }
        return out
    }

    public struct CommandFailed: Error, CustomStringConvertible {
        public let argv: [String]
        public let status: Int32
        public let stderr: String
        public var description: String { "\(argv.joined(separator: " ")) exited \(status): \(stderr)" }
    }
}
