import ArgumentParser
import FogCore
import Foundation
import Scheduler

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a task: a program (after --), a built-in kind, or a JSON file of one task or {\"tasks\": [...]}.",
        discussion:
            "Examples:\n  scheduler submit --kind sleep --seconds 2 --class high\n  scheduler submit --cpu 500 --memory 256 -- /usr/bin/convert in.png out.png\n  scheduler submit --file batch.json"
    )

    @OptionGroup var api: APIOptions
    @Option(help: "A JSON file holding the task or a batch.") var file: String?
    @Option(help: "A built-in kind: noop, sleep, cpu, alloc.") var kind: String?
    @Option(help: "Seconds for sleep, cpu and alloc.") var seconds: Double?
    @Option(help: "Millicores for the cpu kind.") var millicores: Int?
    @Option(help: "Megabytes for the alloc kind.") var mb: Int?
    @Option(name: .customLong("class"), help: "critical, high, normal (default) or low.") var priority: String?
    @Option(help: "CPU the task needs, in millicores.") var cpu: Int?
    @Option(help: "Memory the task needs, in MB.") var memory: Int?
    @Option(help: "Seconds before the task is killed.") var timeout: Double?
    @Option(help: "How many attempts before it is dead.") var maxAttempts: Int?
    @Option(help: "A name for people.") var name: String?
    @Option(help: "Submitting again with the same key returns the same task.") var idempotencyKey: String?
    @Option(help: "Submit this many copies in one batch.") var count: Int = 1
    @Argument(parsing: .postTerminator, help: "The program and its arguments.") var command: [String] = []

    func validate() throws {
        guard (1...TaskLimits.maxBatch).contains(count) else { throw ValidationError("--count must be 1 to \(TaskLimits.maxBatch)") }
    }

    func run() async throws {
        let body: Data
        if let file {
            body = try Data(contentsOf: URL(fileURLWithPath: file))
        } else {
            var task: [String: Any] = [:]
            if !command.isEmpty { task["command"] = command }
            if let kind { task["kind"] = kind }
            var args: [String: Any] = [:]
            if let seconds { args["seconds"] = seconds }
            if let millicores { args["millicores"] = millicores }
            if let mb { args["mb"] = mb }
            if !args.isEmpty { task["args"] = args }
            if let priority { task["class"] = priority }
            var resources: [String: Any] = [:]
            if let cpu { resources["cpu_millicores"] = cpu }
            if let memory { resources["memory_mb"] = memory }
            if !resources.isEmpty { task["resources"] = resources }
            if let timeout { task["timeout_s"] = timeout }
            if let maxAttempts { task["max_attempts"] = maxAttempts }
            if let name { task["name"] = name }
            if let idempotencyKey { task["idempotency_key"] = idempotencyKey }
            let copies: [Any] = (0..<count).map { _ -> Any in task }
            let object: Any = count > 1 ? ["tasks": copies] as [String: Any] : task
            body = try JSONSerialization.data(withJSONObject: object)
        }
        let data = try await api.request("POST", "/v1/tasks", body: body)
        if api.json { return print(String(decoding: data, as: UTF8.self)) }
        struct Batch: Decodable { let tasks: [TaskRecord] }
        let tasks: [TaskRecord]
        if let batch = try? JSONDecoder().decode(Batch.self, from: data) {
            tasks = batch.tasks
        } else {
            tasks = [try JSONDecoder().decode(TaskRecord.self, from: data)]
        }
        printTable(
            ["ID", "NAME", "CLASS", "STATUS"],
            tasks.map { [$0.id.uuidString, $0.spec.name, $0.spec.priority.rawValue, $0.status.rawValue] })
    }
}

struct Tasks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tasks, newest first.")

    @OptionGroup var api: APIOptions
    @Option(help: "Only tasks in this status.") var status: String?
    @Option(help: "Only tasks last placed on this node.") var node: String?
    @Option(name: .customLong("class"), help: "Only tasks of this class.") var priority: String?
    @Option(help: "At most this many (1-1000).") var limit: Int = 50
    @Option(help: "The next_cursor of a previous page.") var cursor: String?

    func run() async throws {
        var query = ["limit=\(limit)"]
        for (key, value) in [("status", status), ("node", node), ("class", priority), ("cursor", cursor)] {
            if let value { query.append("\(key)=\(value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? value)") }
        }
        let data = try await api.request("GET", "/v1/tasks?" + query.joined(separator: "&"))
        if api.json { return print(String(decoding: data, as: UTF8.self)) }
        struct Page: Decodable {
            let tasks: [TaskRecord]
            let next_cursor: String?
        }
        let page = try JSONDecoder().decode(Page.self, from: data)
        printTable(
            ["ID", "NAME", "CLASS", "STATUS", "NODE", "ATTEMPTS", "CREATED", "WHY"],
            page.tasks.map {
                [
                    $0.id.uuidString, $0.spec.name, $0.spec.priority.rawValue, $0.status.rawValue, $0.node ?? "-", String($0.attemptCount),
                    $0.createdAt,
                    String(($0.reason ?? $0.pendingReason ?? "").prefix(90)),
                ]
            })
        if let next = page.next_cursor { print("more: --cursor \(next)") }
    }
}

struct ShowTask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "task", abstract: "Show one task, its attempts and its audit trail.")

    @OptionGroup var api: APIOptions
    @Argument(help: "The task id.") var id: String

    func run() async throws {
        let data = try await api.request("GET", "/v1/tasks/\(id)")
        if api.json { return print(String(decoding: data, as: UTF8.self)) }
        let task = try JSONDecoder().decode(TaskRecord.self, from: data)
        print("task     \(task.id.uuidString)  \(task.spec.name)")
        print(
            "status   \(task.status.rawValue)" + (task.reason.map { "  (\($0))" } ?? "")
                + (task.pendingReason.map { "  waiting: \($0)" } ?? ""))
        print(
            "class    \(task.spec.priority.rawValue)  cpu \(task.spec.resources.cpuMillicores)m  memory \(task.spec.resources.memoryMB) MB  timeout \(task.spec.timeoutSeconds) s"
        )
        print("created  \(task.createdAt)  updated \(task.updatedAt)")
        print("\nattempts")
        printTable(
            ["#", "NODE", "STATUS", "QUEUED", "STARTED", "FINISHED", "EXIT", "CPU S", "PEAK MB", "SCORE"],
            (task.attempts ?? []).map { a in
                [
                    String(a.number), a.node, a.status.rawValue, a.queuedAt, a.startedAt ?? "-", a.finishedAt ?? "-",
                    a.exitCode.map(String.init) ?? "-",
                    a.cpuSeconds.map { String(format: "%.2f", $0) } ?? "-", a.peakMemoryMB.map { String(format: "%.1f", $0) } ?? "-",
                    a.score.map { "\($0.policy) \(String(format: "%.3f", $0.total))" } ?? "-",
                ]
            })
        if let last = task.attempts?.last {
            if let out = last.stdoutTail, !out.isEmpty { print("\nstdout (tail)\n\(out)") }
            if let err = last.stderrTail, !err.isEmpty { print("\nstderr (tail)\n\(err)") }
        }
        print("\naudit trail")
        printTable(["AT", "EVENT", "STATUS", "DETAIL"], (task.events ?? []).map { [$0.at, $0.kind, $0.status ?? "", $0.detail ?? ""] })
    }
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a task that has not ended; a running attempt is killed.")

    @OptionGroup var api: APIOptions
    @Argument(help: "The task id.") var id: String

    func run() async throws {
        let data = try await api.request("POST", "/v1/tasks/\(id)/cancel")
        if api.json { return print(String(decoding: data, as: UTF8.self)) }
        let task = try JSONDecoder().decode(TaskRecord.self, from: data)
        print("\(task.id.uuidString) \(task.status.rawValue)")
    }
}

struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the fog nodes: capacity, what is reserved, heartbeat age.")

    @OptionGroup var api: APIOptions

    func run() async throws {
        let data = try await api.request("GET", "/v1/nodes")
        if api.json { return print(String(decoding: data, as: UTF8.self)) }
        struct List: Decodable { let nodes: [NodeRecord] }
        let nodes = try JSONDecoder().decode(List.self, from: data).nodes
        printTable(
            ["NODE", "ALIVE", "ZONE", "CPU", "MEMORY MB", "RESERVED CPU", "RESERVED MB", "ACTIVE", "HEARTBEAT AGE"],
            nodes.map { n in
                [
                    n.id, n.alive ? "yes" : "no", n.zone ?? "-", n.capacity.map { "\($0.cpuMillicores)m" } ?? "-",
                    n.capacity.map { String($0.memoryMB) } ?? "-",
                    "\(n.reserved.cpuMillicores)m", String(n.reserved.memoryMB), String(n.activeAttempts),
                    n.heartbeatAgeSeconds.map { String(format: "%.1f s", $0) } ?? (n.problem ?? "-"),
                ]
            })
    }
}

struct Wait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait until no task is pending, queued or running (for scripts); exits 1 on timeout.")

    @OptionGroup var api: APIOptions
    @Option(help: "Give up after this many seconds.") var timeout: Double = 120

    func validate() throws {
        guard timeout > 0, timeout <= 31_536_000 else {
            throw ValidationError("--timeout must be more than 0 and at most 31536000 seconds")
        }
    }

    func run() async throws {
        struct Stats: Decodable {
            struct Tasks: Decodable { let tasks_by_status: [String: Int] }
            let tasks: Tasks
        }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let stats = try JSONDecoder().decode(Stats.self, from: try await api.request("GET", "/v1/stats"))
            let open = ["pending", "queued", "running"].reduce(0) { $0 + (stats.tasks.tasks_by_status[$1] ?? 0) }
            if open == 0 { return }
            guard Date() < deadline else { throw CLIError("\(open) tasks have not ended after \(Int(timeout)) s") }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}
