import ArgumentParser
import Foundation
import PostgresClient
import Synchronization

/// Where the load goes and where its outcomes are read: the scheduler's API and its database.
struct Target: ParsableArguments {
    @Option(help: "The scheduler's API (default: $FOG_API_URL).")
    var apiURL: String?
    @Option(help: "A write token (default: $FOG_API_TOKEN).")
    var token: String?
    @Option(help: "The scheduler's database, to read outcomes (default: $FOG_DATABASE_URL).")
    var databaseURL: String?
    @Option(help: "What each task runs: noop (a built-in) or true (/bin/true, which must be in FOG_ALLOWED_COMMANDS, asking 4 cores).")
    var task = "noop"
    @Option(help: "Seconds to wait for every task to end after the last submit.")
    var patience = 300.0

    var api: String { get throws { try setting(apiURL, flag: "api-url", variable: "FOG_API_URL") } }
    var database: String { get throws { try setting(databaseURL, flag: "database-url", variable: "FOG_DATABASE_URL") } }

    private func setting(_ option: String?, flag: String, variable: String) throws -> String {
        guard let value = option ?? ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw ValidationError("give --\(flag) or set \(variable)")
        }
        return value
    }

    var taskJSON: String {
        get throws {
            switch task {
            case "noop": #"{"kind":"noop"}"#
            // A real program asks for a real share: at most 100 run at once on a bench node,
            // not the 4,000 its room for no-ops would let start together.
            case "true": #"{"command":["/bin/true"],"resources":{"cpu_millicores":4000}}"#
            default: throw ValidationError("--task is noop or true, not \(task)")
            }
        }
    }

    func headers() throws -> [(String, String)] {
        [("Authorization", "Bearer \(try setting(token, flag: "token", variable: "FOG_API_TOKEN"))"), ("Content-Type", "application/json")]
    }

    /// POSTs one task or a batch to /v1/tasks: the ids stored (lowercased), or why none were.
    static func submit(_ body: [UInt8], on connection: HTTPConnection, headers: [(String, String)]) -> (ids: [String], error: String?) {
        do {
            let (status, answer) = try connection.request("POST", "/v1/tasks", headers: headers, body: body)
            guard status == 201 else { return ([], "HTTP \(status): \(String(decoding: answer.prefix(200), as: UTF8.self))") }
            return (ids(in: answer).map { $0.lowercased() }, nil)
        } catch {
            return ([], "\(error)")
        }
    }

    /// The ids of the tasks a 201 answer stored.
    static func ids(in body: [UInt8]) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return [] }
        if let tasks = object["tasks"] as? [[String: Any]] { return tasks.compactMap { $0["id"] as? String } }
        return (object["id"] as? String).map { [$0] } ?? []
    }
}

/// What the database says of one task: when its outcome was recorded, and its attempt's times.
struct Outcome {
    let status: String
    let created: Double
    let recorded: Double
    let queued: Double?
    let published: Double?
    let started: Double?
    let finished: Double?
}

/// Waits until no task is open (the bench owns its database while it runs), then reads the
/// outcomes of `ids`.
func outcomes(of ids: [String], databaseURL: String, patience: Double) async throws -> [String: Outcome] {
    let database = try await PostgresConnection.connect(PostgresConfiguration(url: databaseURL))
    defer { database.close() }
    let deadline = wallClock() + patience
    while true {
        let open: Int = try await database.query(
            "SELECT count(*) FROM tasks WHERE status IN ('pending', 'queued', 'running')").rows.first?.decode(at: 0) ?? 0
        if open == 0 { break }
        guard wallClock() < deadline else { throw ValidationError("\(open) tasks still open after \(Int(patience)) s") }
        try await Task.sleep(for: .milliseconds(250))
    }
    var result: [String: Outcome] = [:]
    let chunk = 5_000
    for start in stride(from: 0, to: ids.count, by: chunk) {
        let part = Array(ids[start..<min(ids.count, start + chunk)])
        let rows = try await database.query("""
            SELECT t.id, t.status, extract(epoch FROM t.created_at)::float8, extract(epoch FROM t.updated_at)::float8,
                   extract(epoch FROM a.queued_at)::float8, extract(epoch FROM a.published_at)::float8,
                   extract(epoch FROM a.started_at)::float8, extract(epoch FROM a.finished_at)::float8
            FROM tasks t LEFT JOIN attempts a ON a.id = t.current_attempt WHERE t.id = ANY($1::uuid[])
            """, [PostgresTextArray(part)]).rows
        for row in rows {
            let id: String = try row.decode(at: 0)
            result[id.lowercased()] = Outcome(
                status: try row.decode(at: 1), created: try row.decode(at: 2), recorded: try row.decode(at: 3),
                queued: try row.decodeIfPresent(at: 4), published: try row.decodeIfPresent(at: 5),
                started: try row.decodeIfPresent(at: 6), finished: try row.decodeIfPresent(at: 7))
        }
    }
    return result
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[rank]
}

func milliseconds(_ seconds: Double) -> Double { (seconds * 10_000).rounded() / 10 }

func printJSON(_ object: [String: Any]) throws {
    let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: json, as: UTF8.self))
}

/// `fog-bench latency`: an open-loop load at a fixed rate, one task per request, each sent at
/// its own time whether or not the earlier ones were answered; then, per task, the time from
/// the client's send to its outcome recorded in the database.
struct Latency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open-loop submits at --rate per second for --seconds; latency from send to outcome recorded.")

    @OptionGroup var target: Target
    @Option(help: "Tasks a second.")
    var rate = 25.0
    @Option(help: "How long to send.")
    var seconds = 10.0
    @Option(help: "Connections (each on a thread of its own): requests in flight at most.")
    var lanes = 64

    struct Sent: Sendable {
        let scheduled: Double
        let sent: Double
        let answered: Double
        let id: String?
        let error: String?
    }

    func run() async throws {
        guard rate > 0, rate <= 100_000, seconds > 0, seconds <= 3_600, (1...1_024).contains(lanes) else {
            throw ValidationError("--rate 0-100000, --seconds 0-3600, --lanes 1-1024")
        }
        let headers = try target.headers()
        let body = Array(try target.taskJSON.utf8)
        let results = Mutex<[Sent]>([])
        let runner = try LaneRunner<Double>(lanes: lanes, url: try target.api) { connection, scheduled in
            let sent = wallClock()
            let (ids, error) = Target.submit(body, on: connection, headers: headers)
            let answered = wallClock()
            results.withLock { $0.append(Sent(scheduled: scheduled, sent: sent, answered: answered, id: ids.first, error: error)) }
        }
        let count = max(1, Int((rate * seconds).rounded()))
        let start = wallClock() + 0.2
        let rate = self.rate
        try await offThePool {
            for index in 0..<count {
                let scheduled = start + Double(index) / rate
                sleep(until: scheduled)
                runner.offer(scheduled)
            }
            runner.finish()
        }
        let sent = results.withLock { $0 }
        let ids = sent.compactMap(\.id)
        let stored = try await outcomes(of: ids, databaseURL: try target.database, patience: target.patience)
        var latency: [Double] = []
        var stages: [String: [Double]] = [:]
        var failed = 0
        for row in sent {
            guard let id = row.id, let outcome = stored[id] else { continue }
            if outcome.status != "succeeded" { failed += 1 }
            latency.append(outcome.recorded - row.sent)
            stages["answered", default: []].append(row.answered - row.sent)
            if let queued = outcome.queued { stages["stored_to_attempt", default: []].append(queued - outcome.created) }
            if let queued = outcome.queued, let published = outcome.published { stages["attempt_to_confirm", default: []].append(published - queued) }
            if let queued = outcome.queued, let started = outcome.started { stages["attempt_to_start", default: []].append(started - queued) }
            if let started = outcome.started, let finished = outcome.finished { stages["run", default: []].append(finished - started) }
            if let finished = outcome.finished { stages["finish_to_recorded", default: []].append(outcome.recorded - finished) }
        }
        latency.sort()
        let lag = sent.map { $0.sent - $0.scheduled }.sorted()
        let errors = sent.compactMap(\.error)
        let last = sent.map(\.sent).max() ?? start
        var result: [String: Any] = [
            "bench": "latency", "task": target.task, "rate": rate, "seconds": seconds, "offered": count, "accepted": ids.count,
            "errors": errors.count, "not_succeeded": failed,
            "achieved_rate": ((Double(sent.count) / max(0.001, last - start)) * 10).rounded() / 10,
            "p50_ms": milliseconds(percentile(latency, 50)), "p95_ms": milliseconds(percentile(latency, 95)),
            "p99_ms": milliseconds(percentile(latency, 99)), "max_ms": milliseconds(latency.last ?? .nan),
            "lag_p99_ms": milliseconds(percentile(lag, 99)), "lag_max_ms": milliseconds(lag.last ?? .nan),
        ]
        result["stages_p50_ms"] = stages.mapValues { milliseconds(percentile($0.sorted(), 50)) }
        result["stages_p99_ms"] = stages.mapValues { milliseconds(percentile($0.sorted(), 99)) }
        if let first = errors.first { result["first_error"] = first }
        try printJSON(result)
    }
}

/// `fog-bench throughput`: COUNT tasks in batches through the API as fast as it takes them,
/// and the time from the first send to the last outcome recorded.
struct Throughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "COUNT tasks in batches; first send to last outcome recorded.")

    @OptionGroup var target: Target
    @Option(help: "How many tasks.")
    var count = 20_000
    @Option(help: "Tasks per request (the API takes 1 to 1,000).")
    var batch = 500
    @Option(help: "Requests in flight.")
    var lanes = 4

    func run() async throws {
        guard (1...10_000_000).contains(count), (1...1_000).contains(batch), (1...64).contains(lanes) else {
            throw ValidationError("--count 1-10000000, --batch 1-1000, --lanes 1-64")
        }
        let headers = try target.headers()
        let one = try target.taskJSON
        let ids = Mutex<[String]>([])
        let errors = Mutex<[String]>([])
        let runner = try LaneRunner<Int>(lanes: lanes, url: try target.api) { connection, size in
            let body = Array(("{\"tasks\":[" + Array(repeating: one, count: size).joined(separator: ",") + "]}").utf8)
            let (stored, error) = Target.submit(body, on: connection, headers: headers)
            ids.withLock { $0.append(contentsOf: stored) }
            if let error { errors.withLock { $0.append(error) } }
        }
        let started = wallClock()
        var left = count
        while left > 0 {
            runner.offer(min(batch, left))
            left -= min(batch, left)
        }
        try await offThePool { runner.finish() }
        let submitted = wallClock()
        let accepted = ids.withLock { $0 }
        let stored = try await outcomes(of: accepted, databaseURL: try target.database, patience: target.patience)
        let last = stored.values.map(\.recorded).max() ?? submitted
        let failures = errors.withLock { $0 }
        var result: [String: Any] = [
            "bench": "throughput", "task": target.task, "count": count, "batch": batch, "accepted": accepted.count,
            "errors": failures.count, "not_succeeded": stored.values.filter { $0.status != "succeeded" }.count,
            "seconds": ((last - started) * 1000).rounded() / 1000,
            "per_s": (Double(accepted.count) / max(0.001, last - started)).rounded(),
            "submit_per_s": (Double(accepted.count) / max(0.001, submitted - started)).rounded(),
        ]
        if let first = failures.first { result["first_error"] = first }
        try printJSON(result)
    }
}
