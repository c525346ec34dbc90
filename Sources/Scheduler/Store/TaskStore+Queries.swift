import FogCore
import Foundation
import PostgresClient

extension TaskStore {
    /// One task with its attempts and its audit trail, or nil.
    public func task(_ id: UUID) async throws -> TaskRecord? {
        try await pool.withConnection { connection in
            guard let row = try await connection.query("SELECT \(Self.taskColumns) FROM tasks t WHERE t.id = $1", [id]).rows.first
            else { return nil }
            var task = try Self.taskRecord(row)
            task.attempts = try await connection.query(
                "SELECT \(Self.attemptColumns) FROM attempts a WHERE a.task_id = $1 ORDER BY a.number", [id]
            ).rows.map(Self.attemptRecord)
            task.events = try await connection.query(
                """
                SELECT id, attempt_id, kind, status, detail::text AS detail, fog_ts(at) AS at
                FROM task_events WHERE task_id = $1 ORDER BY id
                """, [id]
            ).rows.map { row in
                EventRecord(
                    id: try row.decode("id"), attemptID: try row.decodeIfPresent("attempt_id"), kind: try row.decode("kind"),
                    status: try row.decodeIfPresent("status"), detail: try row.decodeIfPresent("detail"), at: try row.decode("at"))
            }
            return task
        }
    }

    /// What `GET /v1/tasks` filters on.
    public struct Filter: Sendable, Equatable {
        public var status: TaskStatus?
        public var node: String?
        public var priority: PriorityClass?
        public init(status: TaskStatus? = nil, node: String? = nil, priority: PriorityClass? = nil) {
            self.status = status
            self.node = node
            self.priority = priority
        }
    }

    /// Where a listing page ends: the newest-first position of its last task.
    public struct Cursor: Sendable, Equatable {
        public var createdMicros: Int64
        public var id: UUID

        public init(createdMicros: Int64, id: UUID) {
            self.createdMicros = createdMicros
            self.id = id
        }

        /// An opaque token for clients (base64url of `micros:uuid`).
        public var token: String {
            Data("\(createdMicros):\(id.uuidString.lowercased())".utf8).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }

        public init?(token: String) {
            var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
            guard token.count <= 100, let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8)
            else { return nil }
            let parts = text.split(separator: ":")
            guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else { return nil }
            self.init(createdMicros: micros, id: id)
        }
    }

    /// A page of tasks, newest first, and the cursor of the next page (nil at the end).
    /// Keyset pagination on (created_at, id): a page costs the same wherever it starts.
    public func tasks(_ filter: Filter, limit: Int, after cursor: Cursor?) async throws -> (tasks: [TaskRecord], next: Cursor?) {
        var conditions: [String] = []
        var parameters: [(any PostgresEncodable)?] = []
        func bind(_ value: any PostgresEncodable) -> String {
            parameters.append(value)
            return "$\(parameters.count)"
        }
        if let status = filter.status { conditions.append("t.status = \(bind(status.rawValue))") }
        if let node = filter.node { conditions.append("t.node = \(bind(node))") }
        if let priority = filter.priority { conditions.append("t.class = \(bind(priority.rank))::smallint") }
        if let cursor {
            conditions.append(
                "(t.created_at, t.id) < (timestamptz 'epoch' + \(bind(cursor.createdMicros))::bigint * interval '1 microsecond', \(bind(cursor.id))::uuid)"
            )
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let rows = try await pool.query(
            """
            SELECT \(Self.taskColumns), (extract(epoch FROM t.created_at) * 1000000)::bigint AS created_micros
            FROM tasks t \(whereClause) ORDER BY t.created_at DESC, t.id DESC LIMIT \(bind(limit + 1))
            """, parameters
        ).rows
        let page = try rows.prefix(limit).map(Self.taskRecord)
        var next: Cursor?
        if rows.count > limit, let last = rows.prefix(limit).last {
            next = Cursor(createdMicros: try last.decode("created_micros"), id: try last.decode("id"))
        }
        return (page, next)
    }

    /// Counts for `GET /v1/stats`.
    public struct Stats: Sendable, Codable, Equatable {
        public var tasksByStatus: [String: Int]
        public var pendingByClass: [String: Int]
        public var activeAttemptsByNode: [String: Int]
        public var attemptsByStatus: [String: Int]

        enum CodingKeys: String, CodingKey {
            case tasksByStatus = "tasks_by_status"
            case pendingByClass = "pending_by_class"
            case activeAttemptsByNode = "active_attempts_by_node"
            case attemptsByStatus = "attempts_by_status"
        }
    }

    public func stats() async throws -> Stats {
        try await pool.withConnection { connection in
            func counts(_ sql: String) async throws -> [String: Int] {
                Dictionary(
                    try await connection.query(sql).rows.map { (try $0.decode(at: 0, as: String.self), try $0.decode(at: 1, as: Int.self)) }
                ) { a, _ in a }
            }
            let byClass = try await counts("SELECT class::text, count(*) FROM tasks WHERE status = 'pending' GROUP BY class")
            return Stats(
                tasksByStatus: try await counts("SELECT status, count(*) FROM tasks GROUP BY status"),
                pendingByClass: Dictionary(
                    byClass.compactMap { key, value in
                        Int(key).flatMap {
                            PriorityClass.consumptionOrder.indices.contains($0) ? (PriorityClass.consumptionOrder[$0].rawValue, value) : nil
                        }
                    }
                ) { a, _ in a },
                activeAttemptsByNode: try await counts(
                    "SELECT node, count(*) FROM attempts WHERE status IN ('queued', 'running') GROUP BY node"),
                attemptsByStatus: try await counts("SELECT status, count(*) FROM attempts GROUP BY status"))
        }
    }

    public enum CancelOutcome: Sendable, Equatable {
        case notFound
        /// The task had ended already, with this status.
        case alreadyEnded(TaskStatus)
        /// Cancelled; when an attempt was queued or running, its id and node (to tell the node).
        case cancelled(attempt: UUID?, node: String?)
    }

    /// Cancels a task that has not ended. A running attempt is told to stop by the caller
    /// (through `fog.cluster`); its late `finished` event is then ignored.
    public func cancel(_ id: UUID, reason: String = "cancelled by a client") async throws -> CancelOutcome {
        try await pool.withTransaction { tx in
            guard
                let row = try await tx.query(
                    "SELECT status, current_attempt FROM tasks WHERE id = $1 FOR UPDATE", [id]
                ).rows.first
            else { return .notFound }
            let status = TaskStatus(rawValue: try row.decode(at: 0)) ?? .pending
            if status.isTerminal { return .alreadyEnded(status) }
            var attempt: UUID?
            var node: String?
            if let current: UUID = try row.decodeIfPresent(at: 1),
                let active = try await tx.query(
                    "UPDATE attempts SET status = 'cancelled', finished_at = now(), reason = $2 WHERE id = $1 AND status IN ('queued', 'running') RETURNING node",
                    [current, reason]
                ).rows.first
            {
                attempt = current
                node = try active.decode(at: 0)
            }
            try await tx.query("UPDATE tasks SET status = 'cancelled', reason = $2, updated_at = now() WHERE id = $1", [id, reason])
            try await tx.query(
                "INSERT INTO task_events (task_id, attempt_id, kind, status, detail) VALUES ($1, $2, 'cancelled', 'cancelled', jsonb_build_object('reason', $3::text))",
                [id, attempt, reason])
            return .cancelled(attempt: attempt, node: node)
        }
    }
}
