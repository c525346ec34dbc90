import AMQPClient
import BrokerTopology
import FogCore
import Foundation
import Logging
import PostgresClient
import RedisClient
import Scheduler
import Spawn
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Real scheduler and fog-node processes against the test services, with a clean database,
/// Redis and broker state for each test, and an HTTP client for the API. Every process it
/// starts is stopped by its PID when the test ends.
final class SchedulerLab: @unchecked Sendable {
    static let token = "lab-write-token-0123456789"
    static let readToken = "lab-read-token-0123456789"

    struct Process {
        let pid: pid_t
        let log: String
    }

    let directory: String
    let pool: PostgresPool
    let redis: RedisConnection
    let broker: AMQPConnection
    private var processes: [pid_t] = []
    private var nodeIDs: [String] = []
    /// Per-node broker and Redis users this lab made (deleted at shutdown).
    private var nodeUsers: [String] = []
    let logger = Logger(label: "lab")

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fog-lab-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        pool = PostgresPool(configuration: try PostgresConfiguration(url: TestServices.databaseURL), maximumConnections: 2)
        redis = RedisConnection(configuration: try RedisConfiguration(url: TestServices.redisURL))
        broker = try await AMQPConnection.connect(try AMQPConfiguration(urls: TestServices.brokerURLs.joined(separator: ",")))
        try await reset()
    }

    /// An empty schema, no fog:* keys, empty events and dead-letter queues.
    func reset() async throws {
        try await pool.withConnection { connection in
            try await connection.query("SET client_min_messages TO warning")
            try await connection.query("DROP SCHEMA public CASCADE")
            try await connection.query("CREATE SCHEMA public")
        }
        for key in try await redis.scan(matching: "fog:*") { _ = try await redis.delete(key) }
        try await TopologyDeclarations.declareShared(on: broker)
        _ = try await broker.purgeQueue(Topology.eventsQueue)
        _ = try await broker.purgeQueue(Topology.deadLetterQueue)
    }

    /// Stops every process (SIGKILL), deletes the test nodes' queues, closes connections.
    func shutdown() async {
        for pid in processes {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        processes = []
        for node in nodeIDs {
            guard let id = NodeID(rawValue: node) else { continue }
            for priority in PriorityClass.allCases { _ = try? await broker.deleteQueue(Topology.nodeQueue(id, priority)) }
        }
        for node in nodeUsers { try? TestServices.deleteNodeUser(node) }
        nodeUsers = []
        broker.close()
        redis.close()
        await pool.close()
    }

    var environment: [String: String] {
        [
            "FOG_BROKER_URL": TestServices.brokerURLs.joined(separator: ","), "FOG_REDIS_URL": TestServices.redisURL,
            "FOG_DATABASE_URL": TestServices.databaseURL, "FOG_API_TOKENS": "\(Self.token),\(Self.readToken):read", "FOG_LOG_LEVEL": "info",
        ]
    }

    /// A product of this checkout's debug build, or of FOG_TEST_BINARIES (another build's
    /// folder: to run the attack tests against an earlier version and see them fail).
    static func binary(_ name: String) -> String {
        if let folder = ProcessInfo.processInfo.environment["FOG_TEST_BINARIES"], !folder.isEmpty, name != "clusterctl" {
            return "\(folder)/\(name)"
        }
        return TestServices.repositoryRoot.appendingPathComponent(".build/debug/\(name)").path
    }

    @discardableResult
    func startScheduler(_ name: String, port: Int, extra: [String: String] = [:]) throws -> Process {
        let log = "\(directory)/\(name).log"
        let pid = try CommandRunner.spawnDetached(
            [Self.binary("scheduler"), "serve"],
            environment: environment.merging(["FOG_HTTP_PORT": String(port), "FOG_INSTANCE_ID": name]) { $1 }.merging(extra) { $1 },
            logFile: log)
        processes.append(pid)
        return Process(pid: pid, log: log)
    }

    /// A fog node process, with the fog nodes' shared broker and Redis users (least privilege)
    /// unless `extra` gives it others; inside `cut`'s cgroup when given, to cut it off later.
    @discardableResult
    func startFogNode(
        _ id: String, cpu: Int = 2000, memory: Int = 2048, zone: String = "zone-a", extra: [String: String] = [:],
        cut: NetworkCut? = nil
    ) throws -> Process {
        let log = "\(directory)/\(id).log"
        var env = environment
        env["FOG_DATABASE_URL"] = nil
        env["FOG_API_TOKENS"] = nil
        env["FOG_BROKER_URL"] = TestServices.nodeBrokerURL
        env["FOG_REDIS_URL"] = TestServices.nodeRedisURL
        env.merge([
            "FOG_NODE_ID": id, "FOG_NODE_ZONE": zone, "FOG_NODE_CPU_MILLICORES": String(cpu), "FOG_NODE_MEMORY_MB": String(memory),
            "FOG_WORK_DIR": "\(directory)/work-\(id)", "FOG_ALLOWED_COMMANDS": "/bin/sh,/bin/echo,/bin/true,/bin/false",
        ]) { $1 }
        let argv = [Self.binary("fog-node"), "run"]
        let pid = try CommandRunner.spawnDetached(cut?.wrap(argv) ?? argv, environment: env.merging(extra) { $1 }, logFile: log)
        processes.append(pid)
        nodeIDs.append(id)
        return Process(pid: pid, log: log)
    }

    /// A broker and a Redis user for fog node `id` alone, as an operator provisions them: the
    /// node's FOG_BROKER_URL and FOG_REDIS_URL, for `startFogNode(extra:)` or for an attacker.
    func nodeUser(_ id: String) throws -> [String: String] {
        let urls = try TestServices.nodeUser(id)
        nodeUsers.append(id)
        return ["FOG_BROKER_URL": urls.brokerURL, "FOG_REDIS_URL": urls.redisURL]
    }

    /// True while a process this lab started runs (a crashed one is reaped here).
    func isRunning(_ process: Process) -> Bool {
        var status: Int32 = 0
        return waitpid(process.pid, &status, WNOHANG) == 0
    }

    /// After an attack: every one of `processes` still runs, and a new task submitted to the
    /// scheduler on `port` succeeds.
    func expectServing(port: Int, _ processes: [Process], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for process in processes {
            #expect(isRunning(process), "\(process.log) ended: \(log(process))", sourceLocation: sourceLocation)
        }
        let ids = try await submit([["kind": "noop", "name": "after-the-attack"]], port: port)
        try await waitUntil(timeout: .seconds(60), "a task after the attack to succeed") {
            try await scalar("SELECT count(*) FROM tasks WHERE id = $1 AND status = 'succeeded'", [ids[0]]) == 1
        }
    }

    /// One task as the API shows it (to a write token), once it has ended.
    func ended(_ id: UUID, port: Int, timeout: Duration = .seconds(60)) async throws -> [String: Any] {
        var task: [String: Any] = [:]
        try await waitUntil(timeout: timeout, "task \(id) to end") {
            task = try await http("GET", "/v1/tasks/\(id)", port: port).json
            return !["pending", "queued", "running", nil].contains(task["status"] as? String)
        }
        return task
    }

    /// The last attempt of a task as the API shows it.
    func lastAttempt(_ task: [String: Any]) -> [String: Any] {
        (task["attempts"] as? [[String: Any]])?.last ?? [:]
    }

    /// A scheduler on `port` and fog nodes of the given sizes, once the API answers and every
    /// node heartbeats.
    @discardableResult
    func startSystem(
        port: Int, scheduler: String = "s1", nodes: [(id: String, cpu: Int, memory: Int)], schedulerExtra: [String: String] = [:],
        nodeExtra: [String: String] = [:]
    ) async throws -> (scheduler: Process, nodes: [Process]) {
        let started = try startScheduler(scheduler, port: port, extra: schedulerExtra)
        let fogNodes = try nodes.map { try startFogNode($0.id, cpu: $0.cpu, memory: $0.memory, extra: nodeExtra) }
        try await waitForAPI(port: port)
        try await waitForNodes(nodes.map(\.id))
        return (started, fogNodes)
    }

    /// Sends `signal` to a process this lab started; after SIGKILL or SIGTERM it waits for the
    /// process to end and answers its exit status (128 + signal when a signal ended it).
    @discardableResult
    func signal(_ process: Process, _ signal: Int32) -> Int32? {
        kill(process.pid, signal)
        guard signal == SIGKILL || signal == SIGTERM else { return nil }
        var status: Int32 = 0
        waitpid(process.pid, &status, 0)
        processes.removeAll { $0 == process.pid }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    // MARK: HTTP

    struct HTTPResult {
        let status: Int
        let body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    func http(
        _ method: String, _ path: String, port: Int, body: Data? = nil, token: String? = SchedulerLab.token,
        contentType: String? = "application/json"
    ) async throws -> HTTPResult {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return HTTPResult(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }

    func submit(_ tasks: [[String: Any]], port: Int) async throws -> [UUID] {
        let result = try await http("POST", "/v1/tasks", port: port, body: try JSONSerialization.data(withJSONObject: ["tasks": tasks]))
        guard result.status == 201 else {
            throw LabError("submit answered \(result.status): \(String(decoding: result.body, as: UTF8.self))")
        }
        return (result.json["tasks"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? String).flatMap { UUID(uuidString: $0) } }
    }

    /// Waits until the API answers.
    func waitForAPI(port: Int, timeout: Duration = .seconds(60)) async throws {
        try await waitUntil(timeout: timeout, "the API on port \(port)") {
            (try? await self.http("GET", "/healthz", port: port, token: nil))?.status == 200
        }
    }

    /// Waits until a registered node is alive in Redis.
    func waitForNodes(_ ids: [String], timeout: Duration = .seconds(60)) async throws {
        try await waitUntil(timeout: timeout, "fog nodes \(ids)") {
            for id in ids where (try? await self.redis.get(FogKeys.heartbeat(id))) == nil { return false }
            return true
        }
    }

    func waitUntil(timeout: Duration, _ what: String, poll: Duration = .milliseconds(200), _ condition: () async throws -> Bool)
        async throws
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: poll)
        }
        throw LabError("timed out after \(timeout) waiting for \(what)")
    }

    /// Counts tasks by status, straight from the database.
    func statusCounts() async throws -> [String: Int] {
        Dictionary(
            try await pool.query("SELECT status, count(*) FROM tasks GROUP BY status").rows.map {
                (try $0.decode(at: 0, as: String.self), try $0.decode(at: 1, as: Int.self))
            }
        ) { a, _ in a }
    }

    /// One number from the database; a connection that died with a killed server is retried.
    func scalar(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> Int {
        for _ in 0..<5 {
            do {
                return try await pool.query(sql, parameters).scalar(Int.self) ?? 0
            } catch let error as PostgresError where error.isConnectionError {
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        return try await pool.query(sql, parameters).scalar(Int.self) ?? 0
    }

    /// The tail of a process log, for failure messages.
    func log(_ process: Process) -> String {
        String(((try? String(contentsOfFile: process.log, encoding: .utf8)) ?? "").suffix(3000))
    }
}

struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` with a fresh lab and always shuts it down. Its folder (the processes' logs,
/// the attempts' directories) goes when `body` returns, and stays, named, when it throws (an
/// `#expect` that fails does not throw: its message carries what it needs, as `lab.log` tails).
func withLab(_ body: (SchedulerLab) async throws -> Void) async throws {
    let lab = try await SchedulerLab()
    do {
        try await body(lab)
        await lab.shutdown()
    } catch {
        await lab.shutdown()
        print("the lab's logs are in \(lab.directory)")
        throw error
    }
    try? FileManager.default.removeItem(atPath: lab.directory)
}
