import FogCore
import Foundation
import Spawn
import TestSupport
import Testing

@Suite("HTTP API (real scheduler process)", .serialized, TestServices.required)
struct APITests {
    static let port = 18_481

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let method: String
        let path: String
        let body: Data?
        let token: String?
        let contentType: String?
        let status: Int
        let code: String
        /// A field the error must name.
        let field: String?

        init(
            _ name: String, _ method: String = "POST", _ path: String = "/v1/tasks", json: String? = nil, bytes: [UInt8]? = nil,
            token: String? = SchedulerLab.token, contentType: String? = "application/json", _ status: Int, _ code: String,
            field: String? = nil
        ) {
            self.name = name
            self.method = method
            self.path = path
            self.body = bytes.map { Data($0) } ?? json.map { Data($0.utf8) }
            self.token = token
            self.contentType = contentType
            self.status = status
            self.code = code
            self.field = field
        }

        var testDescription: String { name }
    }

    static let hugeArgv =
        "{\"command\": [\"/bin/echo\"" + String(repeating: ", \"" + String(repeating: "x", count: 60) + "\"", count: 1_500) + "]}"
    static let oversized = "{\"kind\": \"noop\", \"name\": \"" + String(repeating: "y", count: 9 * 1024 * 1024) + "\"}"
    static let tooMany = "{\"tasks\": [" + Array(repeating: "{\"kind\": \"noop\"}", count: 1_001).joined(separator: ",") + "]}"

    static let cases: [Case] = [
        Case("not JSON", json: "{\"kind\": ", 400, "invalid_json"),
        Case(
            "invalid UTF-8", bytes: Array("{\"kind\": \"noop\", \"name\": \"".utf8) + [0xC3, 0x28, 0xFF] + Array("\"}".utf8), 400,
            "invalid_json"),
        Case("a JSON array", json: "[1, 2]", 400, "invalid_field_type"),
        Case(
            "cpu as a string", json: #"{"kind": "noop", "resources": {"cpu_millicores": "lots"}}"#, 400, "invalid_field_type",
            field: "resources.cpu_millicores"),
        Case("kind as a number", json: #"{"kind": 5}"#, 400, "invalid_field_type", field: "kind"),
        Case("command as a string", json: #"{"command": "/bin/true"}"#, 400, "invalid_field_type", field: "command"),
        Case(
            "negative cpu", json: #"{"kind": "noop", "resources": {"cpu_millicores": -1}}"#, 422, "invalid_task",
            field: "resources.cpu_millicores"),
        Case(
            "negative memory", json: #"{"kind": "noop", "resources": {"memory_mb": -64}}"#, 422, "invalid_task",
            field: "resources.memory_mb"),
        Case("unknown class", json: #"{"kind": "noop", "class": "urgent"}"#, 422, "invalid_task", field: "class"),
        Case("unknown kind", json: #"{"kind": "bake"}"#, 422, "invalid_task", field: "kind"),
        Case("both command and kind", json: #"{"kind": "noop", "command": ["/bin/true"]}"#, 422, "invalid_task", field: "command"),
        Case("neither command nor kind", json: #"{"name": "nothing"}"#, 422, "invalid_task", field: "command"),
        Case("unknown field", json: #"{"kind": "noop", "priority": "high"}"#, 422, "invalid_task", field: "priority"),
        Case("huge argv", json: hugeArgv, 422, "invalid_task", field: "command"),
        Case("zero timeout", json: #"{"kind": "noop", "timeout_s": 0}"#, 422, "invalid_task", field: "timeout_s"),
        Case("zero attempts", json: #"{"kind": "noop", "max_attempts": 0}"#, 422, "invalid_task", field: "max_attempts"),
        Case("bad deadline", json: #"{"kind": "noop", "deadline": "next tuesday"}"#, 422, "invalid_task", field: "deadline"),
        Case("stdin not base64", json: #"{"kind": "noop", "stdin": "%%%"}"#, 422, "invalid_task", field: "stdin"),
        Case("env key with =", json: #"{"kind": "noop", "env": {"A=B": "1"}}"#, 422, "invalid_task", field: "env"),
        Case(
            "latency limit without origin", json: #"{"kind": "noop", "constraints": {"max_latency_ms": 5}}"#, 422, "invalid_task",
            field: "constraints.origin"),
        Case(
            "more than any node has", json: #"{"kind": "noop", "resources": {"cpu_millicores": 64000}}"#, 422, "cannot_fit",
            field: "resources.cpu_millicores"),
        Case("an empty batch", json: #"{"tasks": []}"#, 422, "invalid_task", field: "tasks"),
        Case("a batch of 1,001", json: tooMany, 422, "batch_too_large", field: "tasks"),
        Case(
            "one bad task in a batch", json: #"{"tasks": [{"kind": "noop"}, {"kind": "noop", "class": "x"}]}"#, 422, "invalid_task",
            field: "tasks[1].class"),
        Case("a body over the limit", json: oversized, 413, "body_too_large"),
        Case("not JSON content", json: #"{"kind": "noop"}"#, contentType: "text/plain", 415, "unsupported_media_type"),
        Case("no token", json: #"{"kind": "noop"}"#, token: nil, 401, "unauthorized"),
        Case("a wrong token", json: #"{"kind": "noop"}"#, token: "not-the-token-0123456789", 401, "unauthorized"),
        Case("a read-only token writing", json: #"{"kind": "noop"}"#, token: SchedulerLab.readToken, 403, "forbidden"),
        Case("a task id that is not a UUID", "GET", "/v1/tasks/not-a-uuid", 400, "invalid_id", field: "id"),
        Case("a task that does not exist", "GET", "/v1/tasks/6f1c7a52-0000-4000-8000-000000000000", 404, "not_found"),
        Case("cancel of a task that does not exist", "POST", "/v1/tasks/6f1c7a52-0000-4000-8000-000000000000/cancel", 404, "not_found"),
        Case("limit 0", "GET", "/v1/tasks?limit=0", 400, "invalid_query", field: "limit"),
        Case("an unknown status filter", "GET", "/v1/tasks?status=asleep", 400, "invalid_query", field: "status"),
        Case("a forged cursor", "GET", "/v1/tasks?cursor=Zm9vOmJhcg", 400, "invalid_query", field: "cursor"),
    ]

    @Test("malformed requests get their documented 4xx, never a 5xx, and store nothing")
    func malformedRequests() async throws {
        try await withLab { lab in
            let scheduler = try await lab.startSystem(port: Self.port, nodes: [("api-n1", 4000, 4096)]).scheduler
            for item in Self.cases {
                let result = try await lab.http(
                    item.method, item.path, port: Self.port, body: item.body, token: item.token, contentType: item.contentType)
                #expect(result.status == item.status, "\(item.name): \(String(decoding: result.body.prefix(300), as: UTF8.self))")
                #expect(result.errorCode == item.code, "\(item.name)")
                if let field = item.field {
                    let fields = (result.json["error"] as? [String: Any])?["fields"] as? [String: String] ?? [:]
                    #expect(fields[field] != nil, "\(item.name): fields \(fields)")
                }
            }
            #expect(try await lab.scalar("SELECT count(*) FROM tasks") == 0, "no malformed request stored anything")
            #expect(Self.cases.count >= 25)
            // The process took it all in its stride.
            #expect(try await lab.http("GET", "/healthz", port: Self.port, token: nil).status == 200, "\(lab.log(scheduler))")
        }
    }

    /// Submits share one read of the nodes every 250 ms, but a refusal is only given on a fresh
    /// read: a node that registered a moment ago is never refused for.
    @Test("a task that fits only a node registered since the last read of the nodes is accepted")
    func aNodeRegisteredMomentsAgoIsNotRefusedFor() async throws {
        try await withLab { lab in
            _ = try await lab.startSystem(port: Self.port, nodes: [("api-n1", 4000, 4096)])
            let small = try await lab.http("POST", "/v1/tasks", port: Self.port, body: Data(#"{"kind": "noop"}"#.utf8))
            #expect(small.status == 201)
            var fields = try await lab.redis.hashGetAll(FogKeys.node("api-n1"))
            fields["cpu_millicores"] = "16000"
            try await lab.redis.hashSet(FogKeys.node("api-big"), fields)
            _ = try await lab.redis.setAdd(FogKeys.nodes, "api-big")
            let big = try await lab.http(
                "POST", "/v1/tasks", port: Self.port,
                body: Data(#"{"kind": "noop", "resources": {"cpu_millicores": 8000}}"#.utf8))
            #expect(big.status == 201, "\(String(decoding: big.body.prefix(300), as: UTF8.self))")
            let tooBig = try await lab.http(
                "POST", "/v1/tasks", port: Self.port,
                body: Data(#"{"kind": "noop", "resources": {"cpu_millicores": 32000}}"#.utf8))
            #expect(tooBig.status == 422)
            #expect(tooBig.errorCode == "cannot_fit")
        }
    }

    @Test("a reused idempotency key returns the task, or 409 with another body")
    func idempotency() async throws {
        try await withLab { lab in
            try lab.startScheduler("api", port: Self.port)
            try await lab.waitForAPI(port: Self.port)
            let body = Data(#"{"kind": "noop", "idempotency_key": "cam17-frame-1"}"#.utf8)
            let first = try await lab.http("POST", "/v1/tasks", port: Self.port, body: body)
            let again = try await lab.http("POST", "/v1/tasks", port: Self.port, body: body)
            #expect(first.status == 201)
            #expect(again.status == 200)
            #expect(first.json["id"] as? String == again.json["id"] as? String)
            let other = try await lab.http(
                "POST", "/v1/tasks", port: Self.port,
                body: Data(#"{"kind": "sleep", "idempotency_key": "cam17-frame-1"}"#.utf8))
            #expect(other.status == 409)
            #expect(other.errorCode == "idempotency_conflict")
            #expect(try await lab.scalar("SELECT count(*) FROM tasks") == 1)
        }
    }

    @Test("/openapi.json documents exactly the routes the server answers")
    func openAPIMatchesRoutes() async throws {
        try await withLab { lab in
            try lab.startScheduler("api", port: Self.port)
            try await lab.waitForAPI(port: Self.port)
            let document = try await lab.http("GET", "/openapi.json", port: Self.port, token: nil).json
            #expect(document["openapi"] as? String == "3.0.3")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var operations: [(String, String)] = []
            for (path, methods) in paths { for method in methods.keys { operations.append((method, path)) } }
            #expect(operations.count == 10)
            for (method, path) in operations {
                let concrete = path.replacingOccurrences(of: "{id}", with: UUID().uuidString)
                let result = try await lab.http(
                    method.uppercased(), concrete, port: Self.port, body: method == "post" ? Data("{}".utf8) : nil, token: nil)
                if path.hasPrefix("/v1/") {
                    #expect(result.status == 401, "\(method) \(path) must exist and require a token")
                } else {
                    #expect((200..<300).contains(result.status), "\(method) \(path) answered \(result.status)")
                }
            }
            // An undocumented path is not served.
            #expect(try await lab.http("GET", "/v1/secret", port: Self.port).status == 404)
        }
    }

    @Test("the CLI submits, lists, shows, cancels and lists nodes through the API")
    func commandLine() async throws {
        try await withLab { lab in
            try await lab.startSystem(port: Self.port, nodes: [("cli-n1", 1000, 1024)])
            let env = ["FOG_API_URL": "http://127.0.0.1:\(Self.port)", "FOG_API_TOKEN": SchedulerLab.token]
            func cli(_ arguments: [String]) throws -> CommandRunner.Output {
                try CommandRunner.runBlocking([SchedulerLab.binary("scheduler")] + arguments, environment: env, timeout: .seconds(60))
            }
            let submitted = try cli(["submit", "--kind", "sleep", "--seconds", "30", "--class", "high", "--json"])
            #expect(submitted.succeeded, "\(submitted.stderr)")
            let id = try #require((try JSONSerialization.jsonObject(with: Data(submitted.stdout.utf8)) as? [String: Any])?["id"] as? String)
            try await lab.waitUntil(timeout: .seconds(30), "the task to run") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'running'") == 1
            }
            #expect(try cli(["tasks", "--status", "running"]).stdout.contains(id))
            #expect(try cli(["task", id]).stdout.contains("audit trail"))
            #expect(try cli(["nodes"]).stdout.contains("cli-n1"))
            let cancelled = try cli(["cancel", id])
            #expect(cancelled.stdout.contains("cancelled"), "\(cancelled.stderr)")
            let again = try cli(["cancel", id])
            #expect(!again.succeeded)
            #expect(again.stderr.contains("409 already_ended"))
            let bad = try cli(["submit", "--kind", "noop", "--class", "urgent"])
            #expect(!bad.succeeded)
            #expect(bad.stderr.contains("class"))
        }
    }
}
