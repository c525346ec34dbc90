import FogCore
import Foundation
import Logging
import PostgresClient

/// Everything the scheduler keeps in PostgreSQL: tasks, attempts, the audit trail and the
/// leader fence. Each method is one transaction, so a failure leaves nothing half-written.
/// Batches travel as one `jsonb` parameter unpacked by `jsonb_to_recordset`: one round trip
/// for a thousand rows.
public struct TaskStore: Sendable {
    public let pool: PostgresPool
    let logger: Logger

    public init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// The columns `taskRecord(_:)` reads, for `FROM tasks t`.
    static let taskColumns = """
        t.id, t.status, t.spec::text AS spec, t.node, t.attempt_count, t.failures, t.pending_reason, t.reason, t.deadline_risk,
        fog_ts(t.not_before) AS not_before, fog_ts(t.created_at) AS created_at, fog_ts(t.updated_at) AS updated_at
        """

    static func taskRecord(_ row: PostgresRow) throws -> TaskRecord {
        let status: String = try row.decode("status")
        return TaskRecord(
            id: try row.decode("id"), status: TaskStatus(rawValue: status) ?? .pending,
            spec: try json(TaskSpec.self, try row.decode("spec")), node: try row.decodeIfPresent("node"),
            attemptCount: try row.decode("attempt_count"), failures: try row.decode("failures"),
            pendingReason: try row.decodeIfPresent("pending_reason"), reason: try row.decodeIfPresent("reason"),
            notBefore: try row.decodeIfPresent("not_before"), createdAt: try row.decode("created_at"),
            updatedAt: try row.decode("updated_at"), deadlineRisk: try row.decodeIfPresent("deadline_risk"))
    }

    static let attemptColumns = """
        a.id, a.number, a.node, a.status, a.epoch, a.score::text AS score, fog_ts(a.queued_at) AS queued_at,
        fog_ts(a.published_at) AS published_at, fog_ts(a.started_at) AS started_at, fog_ts(a.finished_at) AS finished_at,
        a.exit_code, a.cpu_seconds, a.peak_memory_mb, a.stdout_tail, a.stderr_tail, a.output_lossy, a.reason
        """

    static func attemptRecord(_ row: PostgresRow) throws -> AttemptRecord {
        let status: String = try row.decode("status")
        return AttemptRecord(
            id: try row.decode("id"), number: try row.decode("number"), node: try row.decode("node"),
            status: AttemptStatus(rawValue: status) ?? .queued, epoch: try row.decode("epoch"),
            score: try row.decodeIfPresent("score", as: String.self).map { try json(PlacementScore.self, $0) },
            queuedAt: try row.decode("queued_at"), publishedAt: try row.decodeIfPresent("published_at"),
            startedAt: try row.decodeIfPresent("started_at"), finishedAt: try row.decodeIfPresent("finished_at"),
            exitCode: try row.decodeIfPresent("exit_code"), cpuSeconds: try row.decodeIfPresent("cpu_seconds"),
            peakMemoryMB: try row.decodeIfPresent("peak_memory_mb"), stdoutTail: try row.decodeIfPresent("stdout_tail"),
            stderrTail: try row.decodeIfPresent("stderr_tail"), outputLossy: try row.decode("output_lossy", as: Bool.self) ? true : nil,
            reason: try row.decodeIfPresent("reason"))
    }

    static func json<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    /// A batch as the text of one `jsonb` parameter. A number that is not finite (which JSON
    /// cannot hold) is written as PostgreSQL's text for it, so that one odd value never turns
    /// the whole batch into an empty, refused parameter.
    static func jsonParameter<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    /// `SELECT 1`: is the database there?
    public func ping() async throws {
        _ = try await pool.query("SELECT 1")
    }
}

/// A leader whose epoch the fence no longer carries: a newer leader exists, and this one's
/// dispatch writes were refused.
public struct StaleLeader: Error, CustomStringConvertible {
    public let epoch: Int
    public var description: String { "leader epoch \(epoch) is stale: a newer leader has raised the fence" }
}
