import FogCore
import Foundation
import PostgresClient

private struct Placed: Encodable {
    let task_id: UUID, attempt_id: UUID, number: Int, node: String, score: PlacementScore, node_started_at: Double?
}
private struct Waiting: Encodable { let id: UUID, reason: String }

extension TaskStore {
    /// What queued and running attempts hold on one node.
    public struct Reservation: Sendable, Equatable {
        public var resources: Resources
        public var active: Int
    }

    /// Per node, what its active attempts hold: placement subtracts it from capacity, so a
    /// node is never given more than it has room for, started or not.
    public func reservations() async throws -> [String: Reservation] {
        let rows = try await pool.query(
            """
            SELECT a.node, sum(t.cpu_millicores)::bigint, sum(t.memory_mb)::bigint, sum(t.storage_mb)::bigint, count(*)
            FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE a.status IN ('queued', 'running') GROUP BY a.node
            """
        ).rows
        return Dictionary(
            try rows.map { row in
                (
                    try row.decode(at: 0, as: String.self),
                    Reservation(
                        resources: Resources(
                            cpuMillicores: try row.decode(at: 1), memoryMB: try row.decode(at: 2), storageMB: try row.decode(at: 3)),
                        active: try row.decode(at: 4))
                )
            }
        ) { a, _ in a }
    }

    /// Queued and running attempts per affinity key, for the per-key limit.
    public func activeByAffinityKey() async throws -> [String: Int] {
        let rows = try await pool.query(
            """
            SELECT t.spec->>'affinity_key', count(*) FROM attempts a JOIN tasks t ON t.id = a.task_id
            WHERE a.status IN ('queued', 'running') AND t.spec ? 'affinity_key' GROUP BY 1
            """
        ).rows
        return Dictionary(try rows.map { (try $0.decode(at: 0, as: String.self), try $0.decode(at: 1, as: Int.self)) }) { a, _ in a }
    }

    /// A pending task offered to placement.
    public struct PendingTask: Sendable {
        public let id: UUID
        public let spec: TaskSpec
        public let attemptCount: Int
        public let pendingReason: String?
    }

    /// An attempt written as queued, to be published.
    public struct QueuedAttempt: Sendable {
        public let message: TaskMessage
        public var priority: PriorityClass { message.spec.priority }
    }

    /// Takes up to `limit` pending tasks whose time has come, in dispatch order (class,
    /// deadline, age), locked with SKIP LOCKED; `placement` (FogCore's, the code the simulator
    /// runs) decides for each at `now` (seconds since 1970); the placements are written as
    /// queued attempts under the leader fence, each with the life of its node (the
    /// candidate's `startedAt`). A stale `epoch` writes nothing and throws `StaleLeader`.
    /// Returns the attempts to publish, and `placement` with the room the batch took (and a
    /// policy's own state, such as a round-robin position) for the next round.
    public func dispatch(epoch: Int, limit: Int, placement: BatchPlacement, at now: Double) async throws
        -> (attempts: [QueuedAttempt], placement: BatchPlacement)
    {
        try await pool.withTransaction { tx in
            var placement = placement
            let rows = try await tx.query(
                """
                SELECT id, spec::text, attempt_count, pending_reason FROM tasks
                WHERE status = 'pending' AND (not_before IS NULL OR not_before <= now())
                ORDER BY class, deadline, created_at LIMIT $1 FOR UPDATE SKIP LOCKED
                """, [limit]
            ).rows
            if rows.isEmpty { return ([], placement) }
            // One row that cannot be read (a spec edited by hand, a bad restore) ends as failed
            // with the reason; it never stops the round for the others.
            var unreadable: [Waiting] = []
            let pending = rows.compactMap { row -> PendingTask? in
                guard let id = try? row.decode(at: 0, as: UUID.self) else { return nil }
                do {
                    return PendingTask(
                        id: id, spec: try Self.json(TaskSpec.self, try row.decode(at: 1)),
                        attemptCount: try row.decode(at: 2), pendingReason: try row.decodeIfPresent(at: 3))
                } catch {
                    let reason = StorableText.make("its stored spec cannot be read: \(error)", maxBytes: 500).text
                    unreadable.append(Waiting(id: id, reason: reason))
                    return nil
                }
            }
            if !unreadable.isEmpty {
                try await tx.query(
                    """
                    WITH u AS (
                        UPDATE tasks t SET status = 'failed', reason = w.reason, updated_at = now()
                        FROM jsonb_to_recordset($1::jsonb) AS w(id uuid, reason text) WHERE t.id = w.id RETURNING t.id, w.reason)
                    INSERT INTO task_events (task_id, kind, status, detail)
                    SELECT u.id, 'unreadable', 'failed', jsonb_build_object('reason', u.reason) FROM u
                    """, [Self.jsonParameter(unreadable)])
            }
            let decisions = placement.place(pending.map(\.spec), at: now)
            // Each message says which life of its node it was placed in (TaskMessage.nodeStartedAt).
            let lives = Dictionary(placement.candidates.map { ($0.info.id, $0.info.startedAt) }) { a, _ in a }

            var placed: [Placed] = []
            var waiting: [Waiting] = []
            var queued: [QueuedAttempt] = []
            for (task, decision) in zip(pending, decisions) {
                switch decision {
                case .place(let node, let score):
                    let life = lives[node].flatMap { $0 > 0 ? $0 : nil }
                    let attempt = Placed(
                        task_id: task.id, attempt_id: UUID(), number: task.attemptCount + 1, node: node, score: score,
                        node_started_at: life)
                    placed.append(attempt)
                    queued.append(
                        QueuedAttempt(
                            message: TaskMessage(
                                taskID: task.id, attemptID: attempt.attempt_id, attempt: attempt.number, epoch: epoch, node: node,
                                spec: task.spec,
                                nodeStartedAt: life)))
                case .wait(let reason) where reason != task.pendingReason:
                    waiting.append(Waiting(id: task.id, reason: reason))
                case .wait:
                    break
                }
            }
            if !placed.isEmpty {
                let written = try await tx.query(
                    """
                    WITH fence AS (SELECT epoch FROM scheduler_fence WHERE id = 1 AND epoch = $1::bigint FOR SHARE),
                    b AS (SELECT * FROM jsonb_to_recordset($2::jsonb)
                          AS b(task_id uuid, attempt_id uuid, number integer, node text, score jsonb, node_started_at float8)),
                    ins AS (
                        INSERT INTO attempts (id, task_id, number, node, status, epoch, score, node_started_at)
                        SELECT b.attempt_id, b.task_id, b.number, b.node, 'queued', $1::bigint, b.score, b.node_started_at FROM b, fence
                        RETURNING id, task_id, node, number),
                    upd AS (
                        UPDATE tasks t SET status = 'queued', current_attempt = ins.id, attempt_count = ins.number,
                            node = ins.node, pending_reason = NULL, not_before = NULL, updated_at = now()
                        FROM ins WHERE t.id = ins.task_id)
                    INSERT INTO task_events (task_id, attempt_id, kind, status, detail)
                    SELECT ins.task_id, ins.id, 'queued', 'queued',
                           jsonb_build_object('node', ins.node, 'attempt', ins.number, 'epoch', $1::bigint)
                    FROM ins
                    """, [epoch, Self.jsonParameter(placed)])
                guard written.affectedRows == placed.count else { throw StaleLeader(epoch: epoch) }
            }
            if !waiting.isEmpty {
                try await tx.query(
                    """
                    UPDATE tasks t SET pending_reason = w.reason
                    FROM jsonb_to_recordset($1::jsonb) AS w(id uuid, reason text) WHERE t.id = w.id
                    """, [Self.jsonParameter(waiting)])
            }
            return (queued, placement)
        }
    }

    /// Records that these attempts' messages were confirmed by the broker. It locks them in
    /// the order every writer of attempts uses (task, then attempt: `lockAttempts`): an update
    /// by `id = ANY(...)` took its rows in whatever order the plan met them, and deadlocked
    /// with the event writer under load (9 times in 20,000 tasks, a second each).
    public func markPublished(_ attempts: [UUID]) async throws {
        guard !attempts.isEmpty else { return }
        try await pool.query(
            """
            UPDATE attempts a SET published_at = now() FROM (
                SELECT id FROM attempts WHERE id = ANY($1::uuid[]) AND published_at IS NULL ORDER BY task_id, id FOR NO KEY UPDATE) l
            WHERE a.id = l.id
            """, [PostgresTextArray(attempts.map(\.postgresText))])
    }

    /// Queued attempts whose message was never confirmed (a publish that failed, or a leader
    /// that died between writing and publishing), older than `age`: published again with the
    /// same ids, which the fog node deduplicates.
    public func unpublished(olderThan age: Duration, limit: Int = 500) async throws -> [QueuedAttempt] {
        try await pool.query(
            """
            SELECT a.task_id, a.id, a.number, a.epoch, a.node, t.spec::text, a.node_started_at FROM attempts a JOIN tasks t ON t.id = a.task_id
            WHERE a.status = 'queued' AND a.published_at IS NULL AND a.queued_at < now() - $1::bigint * interval '1 millisecond'
            ORDER BY a.queued_at LIMIT $2
            """, [Int(age.seconds * 1000), limit]
        ).rows.compactMap { row in
            // An attempt whose spec cannot be read is left to the queued backstop, not sent.
            try? QueuedAttempt(
                message: TaskMessage(
                    taskID: row.decode(at: 0), attemptID: row.decode(at: 1), attempt: row.decode(at: 2),
                    epoch: row.decode(at: 3), node: row.decode(at: 4), spec: Self.json(TaskSpec.self, row.decode(at: 5)),
                    nodeStartedAt: row.decodeIfPresent(at: 6)))
        }
    }

    /// A new leadership's fencing token: one more than the highest epoch the database has seen,
    /// written into the fence by the same statement. The database holds the highest epoch, so
    /// the token only ever goes up, whatever Redis forgot or holds (restarted empty, flushed,
    /// moved to an empty volume, a garbage value in `fog:scheduler:epoch`). The update
    /// waits for any dispatch transaction of an older leader to end (they hold the fence row in
    /// share mode), and every later one of theirs writes nothing.
    public func takeEpoch() async throws -> Int {
        let rows = try await pool.query("UPDATE scheduler_fence SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch").rows
        guard let epoch = try rows.first?.decode(at: 0, as: Int.self) else {
            throw PostgresError(.server, "scheduler_fence has no row: the database was not migrated")
        }
        return epoch
    }

    /// Raises the fence to `epoch` (never lowers it): for tests and tools that fence by hand.
    public func raiseFence(to epoch: Int) async throws {
        try await pool.query("UPDATE scheduler_fence SET epoch = greatest(epoch, $1::bigint) WHERE id = 1", [epoch])
    }

    /// The nodes that hold queued or running attempts: the failure detector watches them even
    /// if they left `fog:nodes`.
    public func nodesWithActiveAttempts() async throws -> Set<String> {
        Set(
            try await pool.query("SELECT DISTINCT node FROM attempts WHERE status IN ('queued', 'running')").rows.map {
                try $0.decode(at: 0, as: String.self)
            })
    }
}
