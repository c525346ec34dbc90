import FogCore
import Foundation
import PostgresClient

/// A repeated idempotency key whose stored task differs from the request.
public struct IdempotencyConflict: Error, CustomStringConvertible {
    public let key: String
    public let existing: UUID
    public var description: String {
        "idempotency key '\(key)' already names task \(existing), which was submitted with a different body"
    }
}

extension TaskStore {
    /// A stored task and whether this call created it (false: an earlier one with the same
    /// idempotency key).
    public struct Submitted: Sendable {
        public let task: TaskRecord
        public let created: Bool
    }

    /// Stores `specs` as pending tasks in one transaction: all of them, or none (an
    /// idempotency conflict or a lost database leaves nothing). `deadlineRisks`, when given,
    /// has one entry per spec: why its deadline looked out of reach at submit.
    public func submit(_ specs: [TaskSpec], deadlineRisks: [String?] = []) async throws -> [Submitted] {
        struct Row: Encodable {
            let id: UUID, key: String?, hash: String, name: String, cls: Int, cpu: Int, mem: Int, storage: Int
            let deadline: String?, max_attempts: Int, spec: TaskSpec, risk: String?
        }
        let rows = specs.enumerated().map { index, spec in
            Row(
                id: UUID(), key: spec.idempotencyKey, hash: Self.requestHash(spec), name: spec.name, cls: spec.priority.rank,
                cpu: spec.resources.cpuMillicores, mem: spec.resources.memoryMB, storage: spec.resources.storageMB,
                deadline: spec.deadline, max_attempts: spec.maxAttempts, spec: spec,
                risk: index < deadlineRisks.count ? deadlineRisks[index] : nil)
        }
        return try await pool.withTransaction { tx in
            let inserted = try await tx.query(
                """
                WITH b AS (
                    SELECT * FROM jsonb_to_recordset($1::jsonb) AS b(id uuid, key text, hash text, name text, cls smallint,
                        cpu integer, mem integer, storage integer, deadline timestamptz, max_attempts integer, spec jsonb,
                        risk text)),
                ins AS (
                    INSERT INTO tasks (id, idempotency_key, request_hash, name, class, cpu_millicores, memory_mb, storage_mb,
                                       deadline, max_attempts, spec, deadline_risk, status)
                    SELECT id, key, hash, name, cls, cpu, mem, storage, deadline, max_attempts, spec, risk, 'pending' FROM b
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING *),
                ev AS (INSERT INTO task_events (task_id, kind, status) SELECT id, 'submitted', 'pending' FROM ins)
                SELECT \(Self.taskColumns) FROM ins t
                """, [Self.jsonParameter(rows)])
            var byID: [UUID: TaskRecord] = [:]
            for row in inserted.rows {
                let record = try Self.taskRecord(row)
                byID[record.id] = record
            }
            let created = Set(byID.keys)
            // Rows not inserted repeat an idempotency key: the stored task must be the same request.
            var existingByKey: [String: UUID] = [:]
            let repeated = rows.filter { !created.contains($0.id) }
            if !repeated.isEmpty {
                let found = try await tx.query(
                    "SELECT idempotency_key, id, request_hash FROM tasks WHERE idempotency_key = ANY($1::text[])",
                    [PostgresTextArray(repeated.compactMap(\.key))])
                for row in found.rows {
                    let key: String = try row.decode(at: 0)
                    let id: UUID = try row.decode(at: 1)
                    let hash: String = try row.decode(at: 2)
                    if let request = repeated.first(where: { $0.key == key }), request.hash != hash {
                        throw IdempotencyConflict(key: key, existing: id)
                    }
                    existingByKey[key] = id
                }
            }
            let ids = rows.map { created.contains($0.id) ? $0.id : (existingByKey[$0.key ?? ""] ?? $0.id) }
            if !repeated.isEmpty {
                // The tasks the repeated keys name, as stored (the new ones came back from the insert).
                let records = try await tx.query(
                    "SELECT \(Self.taskColumns) FROM tasks t WHERE t.id = ANY($1::uuid[])",
                    [PostgresTextArray(existingByKey.values.map(\.postgresText))])
                for row in records.rows {
                    let record = try Self.taskRecord(row)
                    byID[record.id] = record
                }
            }
            return try rows.enumerated().map { index, row in
                guard let task = byID[ids[index]] else { throw PostgresError(.decoding, "task \(ids[index]) vanished during submit") }
                return Submitted(task: task, created: created.contains(row.id))
            }
        }
    }

    /// A fingerprint of what a request asks for (FNV-1a over its canonical JSON): a repeated
    /// idempotency key with another fingerprint is a conflict, not a repeat.
    static func requestHash(_ spec: TaskSpec) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in WireFormat.encode(spec) {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}
