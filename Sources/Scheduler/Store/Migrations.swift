import Logging
import PostgresClient

/// The database schema as numbered migrations, applied in order and recorded in
/// `schema_migrations`. `migrate` holds a transaction-level advisory lock, so two schedulers
/// that start together apply each migration once; DDL is transactional in PostgreSQL, so a
/// failed migration leaves nothing behind.
public enum Migrations {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    /// The advisory lock key every migrating process takes ("fogmigr" in ASCII, folded to 63 bits).
    static let lockKey = 0x666f_676d_6967_72

    public static let all: [Migration] = [
        Migration(
            version: 1, name: "tasks, attempts, task events, leader fence",
            sql: """
                CREATE TABLE tasks (
                    id uuid PRIMARY KEY,
                    idempotency_key text UNIQUE,
                    request_hash text NOT NULL,
                    name text NOT NULL,
                    class smallint NOT NULL,
                    cpu_millicores integer NOT NULL,
                    memory_mb integer NOT NULL,
                    storage_mb integer NOT NULL,
                    deadline timestamptz,
                    max_attempts integer NOT NULL,
                    spec jsonb NOT NULL,
                    status text NOT NULL,
                    failures integer NOT NULL DEFAULT 0,
                    attempt_count integer NOT NULL DEFAULT 0,
                    current_attempt uuid,
                    node text,
                    not_before timestamptz,
                    pending_reason text,
                    reason text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                ) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 200,
                        autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
                -- The dispatcher's order: class, then deadline, then age, over pending rows only.
                CREATE INDEX tasks_pending ON tasks (class, deadline, created_at) WHERE status = 'pending';
                CREATE INDEX tasks_listing ON tasks (created_at DESC, id DESC);
                CREATE INDEX tasks_status_listing ON tasks (status, created_at DESC, id DESC);

                CREATE TABLE attempts (
                    id uuid PRIMARY KEY,
                    task_id uuid NOT NULL REFERENCES tasks (id),
                    number integer NOT NULL,
                    node text NOT NULL,
                    status text NOT NULL,
                    epoch bigint NOT NULL,
                    score jsonb,
                    queued_at timestamptz NOT NULL DEFAULT now(),
                    published_at timestamptz,
                    started_at timestamptz,
                    finished_at timestamptz,
                    exit_code integer,
                    cpu_seconds double precision,
                    peak_memory_mb double precision,
                    stdout_tail text,
                    stderr_tail text,
                    reason text,
                    UNIQUE (task_id, number)
                ) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
                CREATE INDEX attempts_active ON attempts (node) WHERE status IN ('queued', 'running');
                CREATE INDEX attempts_unpublished ON attempts (queued_at) WHERE status = 'queued' AND published_at IS NULL;
                CREATE INDEX attempts_running ON attempts (started_at) WHERE status = 'running';

                -- The audit trail: one row per transition, never changed or removed.
                CREATE TABLE task_events (
                    id bigserial PRIMARY KEY,
                    task_id uuid NOT NULL REFERENCES tasks (id),
                    attempt_id uuid,
                    kind text NOT NULL,
                    status text,
                    detail jsonb,
                    at timestamptz NOT NULL DEFAULT now()
                );
                CREATE INDEX task_events_task ON task_events (task_id, id);
                CREATE UNIQUE INDEX task_events_once ON task_events (attempt_id, kind) WHERE kind IN ('started', 'finished');
                CREATE FUNCTION fog_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'task_events is append-only'; END $$;
                CREATE TRIGGER task_events_append_only BEFORE UPDATE OR DELETE ON task_events
                    FOR EACH ROW EXECUTE FUNCTION fog_append_only();

                -- Times as the API writes them: RFC 3339, UTC, milliseconds.
                CREATE FUNCTION fog_ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
                    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

                -- The highest leader epoch seen: a dispatch that carries a lower one writes nothing.
                CREATE TABLE scheduler_fence (id integer PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL);
                INSERT INTO scheduler_fence VALUES (1, 0);
                """),
        Migration(
            version: 2, name: "why a task's deadline was at risk when it was submitted",
            sql: """
                ALTER TABLE tasks ADD COLUMN deadline_risk text;
                """),
        Migration(
            version: 3, name: "output tails marked when bytes were replaced to store them",
            sql: """
                ALTER TABLE attempts ADD COLUMN output_lossy boolean NOT NULL DEFAULT false;
                -- The queued-attempt backstop looks at published attempts that never started.
                CREATE INDEX attempts_queued_published ON attempts (published_at) WHERE status = 'queued';
                """),
        Migration(
            version: 4, name: "which life of its node an attempt was placed in",
            sql: """
                -- The node's registration started_at when the attempt was placed (TaskMessage.node_started_at):
                -- queued attempts of an earlier life are placed again when the node begins a new one.
                ALTER TABLE attempts ADD COLUMN node_started_at double precision;
                """),
    ]

    /// The newest version this build knows.
    public static var latest: Int { all.last?.version ?? 0 }

    /// Applies every migration not yet recorded; returns the versions it applied.
    @discardableResult
    public static func migrate(_ pool: PostgresPool, logger: Logger) async throws -> [Int] {
        try await pool.withTransaction { tx in
            _ = try await tx.query("SELECT pg_advisory_xact_lock($1::bigint)", [lockKey])
            _ = try await tx.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let applied = Set(try await tx.query("SELECT version FROM schema_migrations").rows.map { try $0.decode(at: 0, as: Int.self) })
            var done: [Int] = []
            for migration in all where !applied.contains(migration.version) {
                try await tx.executeScript(migration.sql)
                _ = try await tx.query(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name])
                logger.info("applied migration \(migration.version): \(migration.name)")
                done.append(migration.version)
            }
            return done
        }
    }

    /// The version the database is at (0 before any migration).
    public static func currentVersion(_ pool: PostgresPool) async throws -> Int {
        let exists = try await pool.query("SELECT to_regclass('schema_migrations') IS NOT NULL").scalar(Bool.self) ?? false
        guard exists else { return 0 }
        return try await pool.query("SELECT coalesce(max(version), 0) FROM schema_migrations").scalar(Int.self) ?? 0
    }
}
