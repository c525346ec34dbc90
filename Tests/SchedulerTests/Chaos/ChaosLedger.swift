import FogCore
import Foundation
import PostgresClient

/// What the chaos run checks once a phase's tasks have all ended, from three sources that do
/// not share a code path: the database, the API and the marks the tasks' own programs wrote.
struct ChaosLedger {
    struct Mark: Hashable {
        let task: UUID
        let attempt: UUID
        let node: String
        /// When the run began (seconds since 1970, this host's clock, as PostgreSQL's).
        let at: Double
    }

    struct Attempt {
        let id: UUID
        let task: UUID
        let node: String
        let status: String
        let reason: String
        let queuedAt: Double
        let startedAt: Double?
        /// For a lost attempt: when the scheduler took it back.
        let finishedAt: Double?
    }

    /// A task that ran more than once beyond what its retries explain, and why.
    struct DoubleExecution {
        let task: UUID
        let explained: Bool
        let why: String

        /// The kind of reason, for the table.
        var kind: String {
            if !explained { return "UNEXPLAINED" }
            if why.contains("restarted") { return "its node restarted or fenced itself (a new life) while it ran" }
            if why.contains("fenced") { return "its node fenced itself while it ran" }
            return "its node was declared lost while it ran"
        }
    }

    struct Findings {
        var tasks = 0
        /// Accepted tasks not in the database, or not ended.
        var lost: [String] = []
        /// Tasks with two `succeeded` attempts.
        var duplicateOutcomes: [String] = []
        var doubles: [DoubleExecution] = []
        /// The database, the API and the marks disagree; or a task ended otherwise than its shape says.
        var disagreements: [String] = []

        var unexplainedDoubles: [DoubleExecution] { doubles.filter { !$0.explained } }
        var problems: [String] {
            lost.map { "lost: \($0)" } + duplicateOutcomes.map { "two successes: \($0)" }
                + unexplainedDoubles.map { "ran twice without its node being declared lost: \($0.task) (\($0.why))" }
                + disagreements
        }
    }

    static func readMarks(_ path: String) -> [Mark] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 4, let task = UUID(uuidString: String(fields[0])), let attempt = UUID(uuidString: String(fields[1])),
                let at = Double(fields[3])
            else { return nil }
            return Mark(task: task, attempt: attempt, node: String(fields[2]), at: at)
        }
    }

    static func attempts(_ lab: SchedulerLab, tasks: [UUID]) async throws -> [UUID: [Attempt]] {
        let rows = try await lab.pool.query(
            """
            SELECT id::text, task_id::text, node, status, coalesce(reason, ''), extract(epoch FROM queued_at)::float8,
                   extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8
            FROM attempts WHERE task_id = ANY($1::uuid[]) ORDER BY number
            """, [PostgresTextArray(tasks.map(\.postgresText))]
        ).rows
        var byTask: [UUID: [Attempt]] = [:]
        for row in rows {
            guard let id = UUID(uuidString: try row.decode(at: 0, as: String.self)),
                let task = UUID(uuidString: try row.decode(at: 1, as: String.self))
            else { continue }
            byTask[task, default: []].append(
                Attempt(
                    id: id, task: task, node: try row.decode(at: 2, as: String.self), status: try row.decode(at: 3, as: String.self),
                    reason: try row.decode(at: 4, as: String.self), queuedAt: try row.decode(at: 5, as: Double.self),
                    startedAt: try row.decodeIfPresent(at: 6, as: Double.self), finishedAt: try row.decodeIfPresent(at: 7, as: Double.self))
            )
        }
        return byTask
    }

    /// The checks of DESIGN.md §7 over `accepted` (the tasks of one phase).
    static func check(_ lab: SchedulerLab, accepted: [UUID: ChaosLoad.Accepted], marks allMarks: [Mark], apiPort: Int) async throws
        -> Findings
    {
        var findings = Findings()
        findings.tasks = accepted.count
        let ids = Array(accepted.keys)
        let statuses = Dictionary(
            try await lab.pool.query(
                "SELECT id::text, status FROM tasks WHERE id = ANY($1::uuid[])",
                [PostgresTextArray(ids.map(\.postgresText))]
            ).rows.map {
                (UUID(uuidString: try $0.decode(at: 0, as: String.self)) ?? UUID(), try $0.decode(at: 1, as: String.self))
            }
        ) { a, _ in a }
        let attempts = try await attempts(lab, tasks: ids)
        let marks = Dictionary(grouping: allMarks.filter { accepted[$0.task] != nil }, by: \.task)

        for (id, task) in accepted.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
            guard let status = statuses[id], TaskStatus(rawValue: status)?.isTerminal == true else {
                findings.lost.append("\(id) (\(task.shape.rawValue)): \(statuses[id] ?? "not in the database")")
                continue
            }
            let tried = attempts[id] ?? []
            let succeeded = tried.filter { $0.status == "succeeded" }
            if succeeded.count > 1 { findings.duplicateOutcomes.append("\(id): attempts \(succeeded.map(\.id))") }
            if status != task.shape.expected {
                findings.disagreements.append(
                    "\(id) (\(task.shape.rawValue)) ended \(status), not \(task.shape.expected): \(tried.map { "\($0.node) \($0.status) \($0.reason)" })"
                )
            }
            let marked = marks[id] ?? []
            let byAttempt = Dictionary(grouping: marked, by: \.attempt)
            // Every attempt that reported an outcome of its program ran, on the node the store says.
            for attempt in tried where ["succeeded", "failed"].contains(attempt.status) {
                guard let lines = byAttempt[attempt.id] else {
                    findings.disagreements.append("\(id): attempt \(attempt.id) \(attempt.status) on \(attempt.node) left no mark")
                    continue
                }
                if !lines.contains(where: { $0.node == attempt.node }) {
                    findings.disagreements.append(
                        "\(id): attempt \(attempt.id) is on \(attempt.node) in the store, marked by \(lines.map(\.node))")
                }
            }
            // Every mark belongs to an attempt the store knows.
            for (attempt, lines) in byAttempt where !tried.contains(where: { $0.id == attempt }) {
                findings.disagreements.append("\(id): marks of an attempt the store does not have: \(attempt) on \(lines.map(\.node))")
            }
            // Runs beyond one per attempt with an outcome of its own: double executions.
            let twice = byAttempt.filter { $0.value.count > 1 }
            let withoutOutcome = tried.filter { byAttempt[$0.id] != nil && !["succeeded", "failed"].contains($0.status) }
            guard !twice.isEmpty || !withoutOutcome.isEmpty else { continue }
            var reasons: [String] = []
            var explained = true
            for (attempt, lines) in twice {
                explained = false
                reasons.append("attempt \(attempt) itself ran \(lines.count) times on \(Set(lines.map(\.node)).sorted())")
            }
            for attempt in withoutOutcome {
                // Explained: the run began before the scheduler declared its node lost (or the
                // node fenced itself). A run that began after is one the node should not have made.
                let began = byAttempt[attempt.id]?.map(\.at).min() ?? 0
                let nodeLost = attempt.status == "lost" && (attempt.reason.contains("lost") || attempt.reason.contains("restarted"))
                let fenced = attempt.status == "interrupted" && attempt.reason.contains("fenced")
                if nodeLost, let takenBack = attempt.finishedAt, began > takenBack {
                    explained = false
                    let late = String(format: "%.2f", began - takenBack)
                    reasons.append(
                        "attempt \(attempt.id) began on \(attempt.node) \(late) s AFTER the scheduler had taken it back (\(attempt.reason))"
                    )
                    continue
                }
                if !(nodeLost || fenced) { explained = false }
                reasons.append("\(attempt.status) on \(attempt.node): \(attempt.reason)")
            }
            findings.doubles.append(DoubleExecution(task: id, explained: explained, why: reasons.joined(separator: "; ")))
        }

        // The API says what the database says.
        for id in ids where statuses[id] != nil {
            guard let shown = try? await lab.http("GET", "/v1/tasks/\(id)", port: apiPort).json["status"] as? String else {
                findings.disagreements.append("\(id): the API did not answer")
                continue
            }
            if shown != statuses[id] { findings.disagreements.append("\(id): the API says \(shown), the database \(statuses[id] ?? "")") }
        }
        return findings
    }
}
