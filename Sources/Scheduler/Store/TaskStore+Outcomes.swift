import FogCore
import Foundation
import PostgresClient

extension TaskStore {
    /// What became of a batch of events.
    public struct Tally: Sendable, Equatable {
        public var applied = 0
        /// Late or superseded: recorded as `ignored` in the audit trail.
        public var ignored = 0
        /// Already applied (a redelivery): nothing written.
        public var duplicates = 0
        /// Naming an attempt this database does not know.
        public var unknown = 0
        public init() {}
    }

    /// Applies fog node events in one transaction, each through `TaskLifecycle`: idempotent
    /// per (task, attempt, event), so a redelivered batch changes nothing.
    public func apply(_ events: [TaskEvent], retry: RetryPolicy) async throws -> Tally {
        guard !events.isEmpty else { return Tally() }
        return try await pool.withTransaction { tx in
            var writer = OutcomeWriter(
                snapshots: try await Self.lockAttempts(
                    "a.id = ANY($1::uuid[])", [PostgresTextArray(events.map(\.attemptID.postgresText))], in: tx), retry: retry)
            for event in events {
                let happening: TaskLifecycle.Happening =
                    switch event.kind {
                    case .started: .started
                    case .finished: .finished(event.outcome ?? .failed)
                    }
                writer.apply(happening, to: event.attemptID, event: event)
            }
            try await writer.flush(tx)
            return writer.tally
        }
    }

    /// The leader declares `node` lost: its queued and running attempts end as `lost` and
    /// their tasks go back to pending (or dead), to be placed elsewhere. Fenced by `epoch`.
    /// Returns how many attempts it took back.
    public func takeBackAttempts(onLostNode node: String, epoch: Int, retry: RetryPolicy) async throws -> Int {
        try await takeBack(
            "a.node = $1 AND a.status IN ('queued', 'running')", [node], epoch: epoch, retry: retry,
            reason: "node \(node) lost its heartbeat")
    }

    /// `node` began a new life (it registered again with a later start time) before its
    /// heartbeat expired: a container restarted at once, or a node that fenced itself and came
    /// back. The attempts it reported started before that time ran in the life that ended, so
    /// they end as `lost` (both times are the node's own clock), and so do the queued ones placed
    /// in an earlier life (`node_started_at`, copied from its registration): the node drops their
    /// messages, so they are placed again now rather than by the queued backstop.
    /// `queuedToo` is false for a node of a version that does not drop the messages of an
    /// earlier life (registration `version` below 2): its queued attempts stay, and the broker
    /// hands their deliveries to the new process, as before.
    public func takeBackAttempts(
        onRestartedNode node: String, startedBefore restart: Date, queuedToo: Bool = true, epoch: Int,
        retry: RetryPolicy
    ) async throws -> Int {
        // Running ones started before: their process ended with the old one (or its fence).
        // Queued ones placed in an earlier life: the node drops their messages. (Lives are at
        // least 1 ms apart; half of that absorbs a rounding of the stored number.)
        try await takeBack(
            """
            a.node = $1 AND ((a.status = 'running' AND a.started_at < to_timestamp($2::float8))
                OR ($3::boolean AND a.status = 'queued' AND a.node_started_at < $2::float8 - 0.0005))
            """,
            [node, restart.timeIntervalSince1970, queuedToo], epoch: epoch, retry: retry,
            reason:
                "node \(node) restarted, or fenced itself and lost its heartbeat, at \(RFC3339.format(restart.timeIntervalSince1970)); what it held before was placed again"
        )
    }

    private func takeBack(_ condition: String, _ parameters: [(any PostgresEncodable)?], epoch: Int, retry: RetryPolicy, reason: String)
        async throws -> Int
    {
        try await pool.withTransaction { tx in
            try await Self.requireFence(epoch, tx)
            var writer = OutcomeWriter(snapshots: try await Self.lockAttempts(condition, parameters, in: tx), retry: retry)
            for attempt in writer.snapshots.keys.sorted(by: { $0.uuidString < $1.uuidString }) {
                writer.apply(.nodeLost, to: attempt, event: nil, reason: reason)
            }
            try await writer.flush(tx)
            return writer.tally.applied
        }
    }

    /// The backstop behind the fog nodes' own timeouts: running attempts older than their
    /// timeout plus `grace` end as `timed_out`. Returns them, so that the caller tells their
    /// nodes to stop them.
    public func endOverdueAttempts(epoch: Int, grace: Duration, retry: RetryPolicy) async throws -> [(
        attempt: UUID, task: UUID, node: String
    )] {
        try await pool.withTransaction { tx in
            try await Self.requireFence(epoch, tx)
            let snapshots = try await Self.lockAttempts(
                """
                a.status = 'running' AND a.started_at
                    + ((t.spec->>'timeout_s')::float8 * 1000 + $1::bigint) * interval '1 millisecond' < now()
                """, [Int(grace.seconds * 1000)], in: tx)
            var writer = OutcomeWriter(snapshots: snapshots, retry: retry)
            for attempt in snapshots.keys {
                writer.apply(.timeoutBackstop, to: attempt, event: nil, reason: "ran past its timeout; ended by the scheduler")
            }
            try await writer.flush(tx)
            return snapshots.map { ($0.key, $0.value.task, $0.value.node) }
        }
    }

    /// The backstop behind every way a queued attempt's message can vanish (a purge, a dead
    /// letter after too many deliveries, a node that dropped it): attempts queued and confirmed
    /// by the broker more than `bound` ago that never started end as `lost`, and their tasks are
    /// placed again at once, not counted as a failure. Returns them, so that the caller tells
    /// their nodes to drop the message if they still hold it.
    public func endNeverStartedAttempts(epoch: Int, bound: Duration, retry: RetryPolicy) async throws -> [(
        attempt: UUID, task: UUID, node: String
    )] {
        try await pool.withTransaction { tx in
            try await Self.requireFence(epoch, tx)
            let snapshots = try await Self.lockAttempts(
                """
                a.status = 'queued' AND a.published_at < now() - $1::bigint * interval '1 millisecond'
                """, [Int(bound.seconds * 1000)], in: tx)
            var writer = OutcomeWriter(snapshots: snapshots, retry: retry)
            for attempt in snapshots.keys {
                writer.apply(
                    .neverStarted, to: attempt, event: nil,
                    reason: "not started within \(bound) of its dispatch: its message never reached the node; placed again")
            }
            try await writer.flush(tx)
            return snapshots.map { ($0.key, $0.value.task, $0.value.node) }
        }
    }

    static func requireFence(_ epoch: Int, _ tx: PostgresTransaction) async throws {
        let held = try await tx.query("SELECT 1 FROM scheduler_fence WHERE id = 1 AND epoch = $1::bigint FOR SHARE", [epoch])
        guard !held.rows.isEmpty else { throw StaleLeader(epoch: epoch) }
    }

    /// Locks the attempts matching `condition` and their tasks, in task order (so that two
    /// schedulers never lock the same pair in opposite orders).
    static func lockAttempts(_ condition: String, _ parameters: [(any PostgresEncodable)?], in tx: PostgresTransaction) async throws
        -> [UUID: OutcomeWriter.Locked]
    {
        let rows = try await tx.query(
            """
            SELECT a.id, a.task_id, a.node, a.number, a.status, t.status, t.current_attempt, t.failures, t.max_attempts, a.epoch
            FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE \(condition)
            ORDER BY t.id, a.id FOR UPDATE OF t, a
            """, parameters
        ).rows
        var locked: [UUID: OutcomeWriter.Locked] = [:]
        for row in rows {
            let id: UUID = try row.decode(at: 0)
            let current: UUID? = try row.decodeIfPresent(at: 6)
            locked[id] = OutcomeWriter.Locked(
                task: try row.decode(at: 1), node: try row.decode(at: 2), number: try row.decode(at: 3), epoch: try row.decode(at: 9),
                snapshot: TaskLifecycle.Snapshot(
                    taskStatus: TaskStatus(rawValue: try row.decode(at: 5)) ?? .pending,
                    attemptStatus: AttemptStatus(rawValue: try row.decode(at: 4)) ?? .queued,
                    isCurrent: current == id, failures: try row.decode(at: 7), maxAttempts: try row.decode(at: 8)))
        }
        return locked
    }
}
