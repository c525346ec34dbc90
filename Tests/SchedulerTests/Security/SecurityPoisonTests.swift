import AMQPClient
import FogCore
import Foundation
import PostgresClient
import RedisClient
import Spawn
import TestSupport
import Testing

/// Poison values (THREATS.md: "no trapping conversion on anything from outside", "one bad
/// message stops nothing but itself"): output the database refuses, events it refuses,
/// registrations and ids in Redis that no node could have, hostile HTTP bodies, settings and
/// flags. After each, the same processes still run and later tasks succeed.
@Suite("Security: poison values (real processes)", .serialized, TestServices.required)
struct SecurityPoisonTests {
    static let port = 18_611

    func system(_ lab: SchedulerLab, node: String = "psn-n1") async throws -> [SchedulerLab.Process] {
        let (scheduler, nodes) = try await lab.startSystem(
            port: Self.port, nodes: [(node, 2000, 2048)], nodeExtra: ["FOG_ALLOWED_COMMANDS": "/bin/sh"])
        return [scheduler] + nodes
    }

    func shell(_ script: String, name: String = "poison") -> [String: Any] {
        ["command": ["/bin/sh", "-c", script], "max_attempts": 1, "name": name]
    }

    @Test("attack: a task prints a NUL byte (PostgreSQL refuses \\u0000): its tail is stored lossy and marked, later events flow")
    func nulInOutput() async throws {
        try await withLab { lab in
            let processes = try await system(lab)
            let ids = try await lab.submit([shell("printf 'before\\000after'")] + (0..<20).map { _ in ["kind": "noop"] }, port: Self.port)
            for id in ids { _ = try await lab.ended(id, port: Self.port) }
            let attempt = lab.lastAttempt(try await lab.ended(ids[0], port: Self.port))
            #expect(attempt["status"] as? String == "succeeded", "\(attempt)")
            #expect(attempt["stdout_tail"] as? String == "before\u{FFFD}after")
            #expect(attempt["output_lossy"] as? Bool == true)
            #expect(try await lab.statusCounts()["succeeded"] == 21)
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    @Test("attack: events the database refuses are isolated: one stored in a safe form, one dead-lettered, the rest of the batch applied")
    func eventsTheDatabaseRefuses() async throws {
        try await withLab { lab in
            let processes = try await system(lab)
            // A refusal the sanitising cannot foresee, as a database constraint or a trigger
            // of an operator's would make: any report with output for 'refused-once', and any
            // report at all for 'refused-always'.
            try await lab.pool.withConnection { connection in
                try await connection.query(
                    """
                    CREATE FUNCTION fog_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                    DECLARE task_name text;
                    BEGIN
                        SELECT name INTO task_name FROM tasks WHERE id = NEW.task_id;
                        IF NEW.finished_at IS NOT NULL AND (task_name = 'refused-always'
                            OR (task_name = 'refused-once' AND NEW.stdout_tail IS NOT NULL)) THEN
                            RAISE EXCEPTION 'the test refuses this report of %', task_name;
                        END IF;
                        RETURN NEW;
                    END $$
                    """)
                try await connection.query(
                    "CREATE TRIGGER fog_test_refuse BEFORE UPDATE ON attempts FOR EACH ROW EXECUTE FUNCTION fog_test_refuse()")
            }
            _ = try await lab.broker.purgeQueue(Topology.deadLetterQueue)
            let ids = try await lab.submit(
                [shell("echo one", name: "refused-once"), shell("echo two", name: "refused-always")]
                    + (0..<30).map { _ in shell("echo fine", name: "fine") }, port: Self.port)
            let once = lab.lastAttempt(try await lab.ended(ids[0], port: Self.port))
            #expect(once["status"] as? String == "succeeded", "\(once)")
            #expect((once["reason"] as? String)?.contains("could not store this report") == true, "\(once)")
            for id in ids.dropFirst(2) {
                #expect(lab.lastAttempt(try await lab.ended(id, port: Self.port))["stdout_tail"] as? String == "fine\n")
            }
            var dead: [String] = []
            try await lab.waitUntil(timeout: .seconds(30), "the refused event in fog.dead") {
                while let delivery = try await lab.broker.get(queue: Topology.deadLetterQueue) {
                    dead.append(delivery.properties.headers[Topology.deadReasonHeader]?.string ?? "")
                    try await lab.broker.ack(delivery)
                }
                return dead.contains { $0.contains("refused-always") }
            }
            print("poison: fog.dead holds \(dead)")
            // Its attempt stays running in the store until the timeout backstop ends it.
            #expect(try await lab.scalar("SELECT count(*) FROM tasks WHERE name = 'fine' AND status = 'succeeded'") == 30)
            try await lab.pool.withConnection { try await $0.query("DROP TRIGGER fog_test_refuse ON attempts") }
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    @Test(
        "attack: registrations with 1e300, NaN, -1, garbage and absurd speeds and latencies, ids with a space, garbage heartbeats: ignored with one log line each, never placed on"
    )
    func garbageInRedis() async throws {
        try await withLab { lab in
            let processes = try await system(lab)
            let good = try FogNodeInfo(
                id: "x",
                hashFields: FogNodeInfo(
                    id: "x", capacity: Resources(cpuMillicores: 64_000, memoryMB: 65_536),
                    zone: "zone-a", startedAt: 1
                ).hashFields
            ).hashFields
            // Written with an edge host's credentials: the fog nodes' shared user may write
            // any fog:node:* key and add to fog:nodes, and nothing else.
            let edge = RedisConnection(configuration: try RedisConfiguration(url: TestServices.nodeRedisURL))
            defer { edge.close() }
            let poisoned: [(id: String, field: String, value: String)] = [
                ("bad-huge", "cpu_millicores", "1e300"), ("bad-nan", "memory_mb", "nan"), ("bad-negative", "storage_mb", "-1"),
                ("bad-garbage", "cpu_millicores", "lots"), ("bad-speed", "speed", "1e-300"),
                ("bad-latency", "latency_ms", #"{"zone-a": 1e308}"#),
                ("bad-battery", "battery_pct", "inf"), ("bad id", "zone", "zone-a"),
            ]
            for (id, field, value) in poisoned {
                var fields = good
                fields[field] = value
                try await edge.hashSet(FogKeys.node(id), fields)
                _ = try await edge.setAdd(FogKeys.nodes, id)
                try await edge.set(
                    FogKeys.heartbeat(id),
                    to:
                        #"{"v":1,"used":{"cpu_millicores":0,"memory_mb":0,"storage_mb":0},"running":0,"queued":0,"at":1800000000,"draining":false}"#,
                    expiry: .seconds(60))
            }
            try await edge.hashSet(FogKeys.node("bad-heartbeat"), good)
            _ = try await edge.setAdd(FogKeys.nodes, "bad-heartbeat")
            try await edge.set(
                FogKeys.heartbeat("bad-heartbeat"),
                to:
                    #"{"v":1,"used":{"cpu_millicores":-5,"memory_mb":0,"storage_mb":0},"running":-1,"queued":-9223372036854775808,"at":-1e308,"draining":false}"#,
                expiry: .seconds(60))
            // Tasks that placement and the deadline check would compute on every node for.
            let deadline = RFC3339.format(Date().timeIntervalSince1970 + 3_600)
            let ids = try await lab.submit(
                (0..<10).map { _ in
                    ["kind": "noop", "deadline": deadline, "expected_s": 1, "constraints": ["origin": "zone-a"]] as [String: Any]
                }, port: Self.port)
            for id in ids {
                let task = try await lab.ended(id, port: Self.port)
                #expect(task["status"] as? String == "succeeded" && task["node"] as? String == "psn-n1", "\(task)")
            }
            try await Task.sleep(for: .seconds(2))  // more dispatch and failure-detector rounds
            let log = (try? String(contentsOfFile: processes[0].log, encoding: .utf8)) ?? ""
            for (id, field, _) in poisoned where id != "bad id" {
                let lines = log.split(separator: "\n").filter { $0.contains("fog node \(id) is not placed on") }
                #expect(lines.count == 1, "\(id): \(lines.count) log lines")
                #expect(lines.first?.contains("field \(field)") == true, "\(lines)")
            }
            #expect(log.contains("fog node bad id is not placed on: fog:nodes holds 'bad id', which is not a node id"))
            #expect(log.contains("fog node bad-heartbeat is not placed on: fog:node:bad-heartbeat:heartbeat"))
            let nodes = try await lab.http("GET", "/v1/nodes", port: Self.port).json["nodes"] as? [[String: Any]] ?? []
            #expect(nodes.filter { ($0["id"] as? String)?.hasPrefix("bad") == true }.allSatisfy { $0["problem"] is String }, "\(nodes)")
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    @Test("attack: hostile HTTP bodies and queries (1e300, 2^63, NUL, loader variables, garbage cursors) get a 4xx, never a crash or a 5xx")
    func hostileRequests() async throws {
        try await withLab { lab in
            let processes = try await system(lab)
            let bodies = [
                #"{"kind": "noop", "timeout_s": 1e300}"#, #"{"kind": "noop", "expected_s": -1e300}"#,
                #"{"kind": "noop", "max_attempts": 9223372036854775807}"#, #"{"kind": "noop", "max_attempts": 9223372036854775808}"#,
                #"{"kind": "alloc", "args": {"mb": 9223372036854775807}}"#, #"{"kind": "sleep", "args": {"seconds": 1e308}}"#,
                #"{"kind": "noop", "constraints": {"origin": "a", "max_latency_ms": 9223372036854775807}}"#,
                #"{"kind": "noop", "name": "a\u0000b"}"#, #"{"kind": "noop", "constraints": {"labels": {"k\u0000": "v"}}}"#,
                #"{"kind": "noop", "env": {"LD_PRELOAD": "/x.so"}}"#, #"{"kind": "noop", "idempotency_key": "\u0000"}"#,
                #"{"kind": "noop", "resources": {"cpu_millicores": 1e300}}"#, #"{"kind": "noop", "deadline": "9999-99-99T99:99:99Z"}"#,
                #"{"command": ["/bin/sh\u0000x"]}"#, #"{"tasks": [{"kind": "noop", "timeout_s": 1e300}]}"#, "[]", "null", "1e300",
            ]
            for body in bodies {
                let result = try await lab.http("POST", "/v1/tasks", port: Self.port, body: Data(body.utf8))
                #expect((400...499).contains(result.status), "\(body): \(result.status) \(String(decoding: result.body, as: UTF8.self))")
            }
            for query in [
                "limit=99999999999999999999", "limit=-1", "cursor=%00%00", "cursor=\(String(repeating: "A", count: 200))",
                "status=%00", "class=1e300",
            ] {
                let result = try await lab.http("GET", "/v1/tasks?\(query)", port: Self.port)
                #expect((400...499).contains(result.status), "\(query): \(result.status)")
            }
            #expect(try await lab.scalar("SELECT count(*) FROM tasks") == 0, "nothing was stored")
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    @Test("attack: FOG_* settings and CLI flags of 1e300, 2^63 and -1 end with a message naming them, never a trap")
    func hostileSettingsAndFlags() throws {
        let node = SchedulerLab.binary("fog-node")
        let scheduler = SchedulerLab.binary("scheduler")
        let clusterctl = SchedulerLab.binary("clusterctl")
        let services = ["FOG_BROKER_URL": TestServices.nodeBrokerURL, "FOG_REDIS_URL": TestServices.nodeRedisURL, "FOG_NODE_ID": "psn-cli"]
        let cases: [(argv: [String], environment: [String: String], names: String)] = [
            ([node, "run"], services.merging(["FOG_HEARTBEAT_INTERVAL": "1e300s"]) { $1 }, "FOG_HEARTBEAT_INTERVAL"),
            ([node, "run"], services.merging(["FOG_DRAIN_TIMEOUT": "9223372036854775807"]) { $1 }, "FOG_DRAIN_TIMEOUT"),
            ([node, "run"], services.merging(["FOG_NODE_LATENCIES": "zone-a=inf"]) { $1 }, "FOG_NODE_LATENCIES"),
            ([node, "run"], services.merging(["FOG_NODE_BATTERY_PCT": "nan"]) { $1 }, "FOG_NODE_BATTERY_PCT"),
            ([node, "run"], services.merging(["FOG_TASK_UIDS": "0-10"]) { $1 }, "FOG_TASK_UIDS"),
            ([node, "run"], services.merging(["FOG_TASK_USER": "root"]) { $1 }, "FOG_TASK_USER"),
            (
                [scheduler, "serve"],
                [
                    "FOG_BROKER_URL": "amqp://u:p@127.0.0.1:1/fog", "FOG_REDIS_URL": "redis://127.0.0.1:1",
                    "FOG_DATABASE_URL": "postgres://u:p@127.0.0.1:1/fog", "FOG_API_TOKENS": "0123456789abcdef0123",
                    "FOG_LEADER_LEASE": "1e300",
                ], "FOG_LEADER_LEASE"
            ),
            ([node, "builtin", "alloc", "--mb", "9223372036854775807"], [:], "--mb"),
            ([node, "builtin", "sleep", "--seconds", "nan"], [:], "--seconds"),
            ([node, "exec-shim", "--cpu-seconds", "9223372036854775807", "--", "/bin/true"], [:], "--cpu-seconds"),
            ([node, "exec-shim", "--max-processes", "-5", "--uid", "65534", "--gid", "65534", "--", "/bin/true"], [:], "--max-processes"),
            (
                [
                    clusterctl, "status", "--node", "rmq1@localhost", "--redis-url", "redis://127.0.0.1:1", "--heartbeat-ttl",
                    "9223372036854775807",
                ], [:], "--heartbeat-ttl"
            ),
            ([scheduler, "submit", "--count", "-1", "--kind", "noop"], ["FOG_API_TOKEN": "x"], "--count"),
            ([scheduler, "wait", "--timeout", "nan"], ["FOG_API_TOKEN": "x"], "--timeout"),
        ]
        for (argv, environment, name) in cases {
            let output = try CommandRunner.runBlocking(argv, environment: environment, timeout: .seconds(30))
            let said = output.stderr + output.stdout
            #expect(output.status != 0 && output.status < 128, "\(argv.dropFirst()): exit \(output.status) (a signal is a trap)")
            #expect(said.contains(name), "\(argv.dropFirst()) said: \(said.suffix(300))")
        }
    }
}
