import FogCore
import Foundation
import PostgresClient

/// Turns lifecycle decisions on locked attempts into three batched statements: attempt
/// updates, task updates and audit-trail rows. Several events for one attempt in a batch
/// (started, then finished) see each other's effect through the updated snapshots.
struct OutcomeWriter {
    struct Locked: Sendable {
        let task: UUID
        let node: String
        let number: Int
        /// The leader epoch it was placed under.
        let epoch: Int
        var snapshot: TaskLifecycle.Snapshot
    }

    private struct AttemptUpdate: Encodable {
        let id: UUID
        var status: String
        var started_at: String?
        var finished_at: String?
        var exit_code: Int?
        var cpu_seconds: Double?
        var peak_memory_mb: Double?
        var stdout_tail: String?
        var stderr_tail: String?
        var output_lossy: Bool?
        var reason: String?
    }

    private struct TaskUpdate: Encodable {
        let id: UUID
        var status: String
        var failures: Int
        var not_before: String?
        var pending_reason: String?
        var reason: String?
    }

    private struct EventRow: Encodable {
        let task_id: UUID
        let attempt_id: UUID?
        let kind: String
        let status: String?
        let detail: [String: String]
        let at: String?
    }

    private(set) var snapshots: [UUID: Locked]
    let retry: RetryPolicy
    private(set) var tally = TaskStore.Tally()
    private var attemptUpdates: [UUID: AttemptUpdate] = [:]
    private var taskUpdates: [UUID: TaskUpdate] = [:]
    private var events: [EventRow] = []

    init(snapshots: [UUID: Locked], retry: RetryPolicy) {
        self.snapshots = snapshots
        self.retry = retry
    }

    mutating func apply(_ happening: TaskLifecycle.Happening, to attemptID: UUID, event: TaskEvent?, reason: String? = nil) {
        guard var locked = snapshots[attemptID] else {
            tally.unknown += 1
            return
        }
        let at = event.map { RFC3339.format($0.at) }
        let now = Date().timeIntervalSince1970
        let decision: TaskLifecycle.Decision
        if let event, event.node != locked.node {
            // Only the node an attempt was placed on reports on it (THREATS.md).
            decision = .ignore("reported by node \(event.node), but the attempt was placed on \(locked.node)")
        } else if let event, let epoch = event.epoch, epoch != locked.epoch {
            decision = .ignore("reported under epoch \(epoch), but the attempt was placed under epoch \(locked.epoch)")
        } else {
            decision = TaskLifecycle.decide(happening, given: locked.snapshot)
        }
        switch decision {
        case .duplicate:
            tally.duplicates += 1
        case .ignore(let why):
            tally.ignored += 1
            var detail = ["reason": why, "node": locked.node]
            detail["reported_by"] = event?.node
            detail["event"] = event?.kind.rawValue
            detail["outcome"] = event?.outcome?.rawValue
            events.append(EventRow(task_id: locked.task, attempt_id: attemptID, kind: "ignored", status: nil, detail: detail, at: nil))
        case .start:
            tally.applied += 1
            locked.snapshot.attemptStatus = .running
            locked.snapshot.taskStatus = .running
            var update = attemptUpdates[attemptID] ?? AttemptUpdate(id: attemptID, status: "running")
            update.status = AttemptStatus.running.rawValue
            update.started_at = at ?? RFC3339.format(now)
            attemptUpdates[attemptID] = update
            setTask(locked, status: .running, failures: locked.snapshot.failures)
            events.append(
                EventRow(
                    task_id: locked.task, attempt_id: attemptID, kind: "started", status: "running",
                    detail: ["node": locked.node], at: at))
        case .end(let attemptStatus, let taskStatus, let failures, let backoffFor):
            tally.applied += 1
            let why = event?.reason ?? reason
            var update = attemptUpdates[attemptID] ?? AttemptUpdate(id: attemptID, status: attemptStatus.rawValue)
            update.status = attemptStatus.rawValue
            update.finished_at = at ?? RFC3339.format(now)
            update.exit_code = event?.exitCode
            update.cpu_seconds = event?.cpuSeconds
            update.peak_memory_mb = event?.peakMemoryMB
            update.stdout_tail = event?.stdoutTail
            update.stderr_tail = event?.stderrTail
            update.output_lossy = event?.outputLossy
            update.reason = why
            attemptUpdates[attemptID] = update

            var detail = ["node": locked.node, "outcome": attemptStatus.rawValue, "attempt": String(locked.number)]
            detail["exit_code"] = event?.exitCode.map(String.init)
            detail["reason"] = why
            if locked.snapshot.isCurrent && !locked.snapshot.taskStatus.isTerminal {
                var notBefore: String?
                var pendingReason: String?
                if taskStatus == .pending {
                    if let backoffFor {
                        let wait = retry.delay(afterFailures: backoffFor, random: Double.random(in: 0...1))
                        notBefore = RFC3339.format(now + wait.seconds)
                        pendingReason = "retry after attempt \(locked.number) \(attemptStatus.rawValue), not before \(notBefore!)"
                    } else {
                        pendingReason = "to be placed again after attempt \(locked.number) \(attemptStatus.rawValue)"
                    }
                    detail["retry_at"] = notBefore
                }
                let taskReason =
                    taskStatus == .succeeded || taskStatus == .pending
                    ? nil
                    : "attempt \(locked.number) on \(locked.node): \(attemptStatus.rawValue)" + (why.map { " (\($0))" } ?? "")
                        + (taskStatus == .dead ? "; \(failures) of \(locked.snapshot.maxAttempts) attempts failed" : "")
                setTask(
                    locked, status: taskStatus, failures: failures, notBefore: notBefore, pendingReason: pendingReason, reason: taskReason)
                locked.snapshot.taskStatus = taskStatus
                locked.snapshot.failures = failures
            }
            locked.snapshot.attemptStatus = attemptStatus
            let kind =
                switch happening {
                case .nodeLost: "lost"
                case .timeoutBackstop: "timeout_backstop"
                case .neverStarted: "queued_backstop"
                default: "finished"
                }
            events.append(
                EventRow(
                    task_id: locked.task, attempt_id: attemptID, kind: kind,
                    status: locked.snapshot.isCurrent ? taskStatus.rawValue : nil, detail: detail, at: at))
        }
        snapshots[attemptID] = locked
    }

    private mutating func setTask(
        _ locked: Locked, status: TaskStatus, failures: Int, notBefore: String? = nil,
        pendingReason: String? = nil, reason: String? = nil
    ) {
        taskUpdates[locked.task] = TaskUpdate(
            id: locked.task, status: status.rawValue, failures: failures,
            not_before: notBefore, pending_reason: pendingReason, reason: reason)
    }

    func flush(_ tx: PostgresTransaction) async throws {
        if !attemptUpdates.isEmpty {
            try await tx.query(
                """
                UPDATE attempts a SET status = u.status, started_at = coalesce(u.started_at, a.started_at),
                    finished_at = coalesce(u.finished_at, a.finished_at), exit_code = u.exit_code, cpu_seconds = u.cpu_seconds,
                    peak_memory_mb = u.peak_memory_mb, stdout_tail = u.stdout_tail, stderr_tail = u.stderr_tail,
                    output_lossy = coalesce(u.output_lossy, false), reason = u.reason
                FROM jsonb_to_recordset($1::jsonb) AS u(id uuid, status text, started_at timestamptz, finished_at timestamptz,
                    exit_code integer, cpu_seconds float8, peak_memory_mb float8, stdout_tail text, stderr_tail text,
                    output_lossy boolean, reason text)
                WHERE a.id = u.id
                """, [TaskStore.jsonParameter(Array(attemptUpdates.values))])
        }
        if !taskUpdates.isEmpty {
            try await tx.query(
                """
                UPDATE tasks t SET status = u.status, failures = u.failures, not_before = u.not_before,
                    pending_reason = u.pending_reason, reason = coalesce(u.reason, t.reason), updated_at = now()
                FROM jsonb_to_recordset($1::jsonb) AS u(id uuid, status text, failures integer, not_before timestamptz,
                    pending_reason text, reason text)
                WHERE t.id = u.id
                """, [TaskStore.jsonParameter(Array(taskUpdates.values))])
        }
        if !events.isEmpty {
            try await tx.query(
                """
                INSERT INTO task_events (task_id, attempt_id, kind, status, detail, at)
                SELECT e.task_id, e.attempt_id, e.kind, e.status, e.detail, coalesce(e.at, now())
                FROM jsonb_to_recordset($1::jsonb) AS e(task_id uuid, attempt_id uuid, kind text, status text, detail jsonb, at timestamptz)
                ON CONFLICT DO NOTHING
                """, [TaskStore.jsonParameter(events)])
        }
    }
}
