import FogCore
import Foundation

/// A task as the API shows it: its spec, where it is in its lifecycle, and (for one task)
/// its attempts and audit trail. The CLI decodes the same type.
public struct TaskRecord: Sendable, Codable, Equatable {
    public var id: UUID
    public var status: TaskStatus
    public var spec: TaskSpec
    /// The node of the latest attempt.
    public var node: String?
    public var attemptCount: Int
    public var failures: Int
    /// Why a pending task waits (no node with room, backoff, ...).
    public var pendingReason: String?
    /// Why the task ended as it did, when it did not succeed.
    public var reason: String?
    public var notBefore: String?
    /// Why, when it was submitted, no live node could meet its deadline (it was accepted anyway).
    public var deadlineRisk: String?
    public var createdAt: String
    public var updatedAt: String
    public var attempts: [AttemptRecord]?
    public var events: [EventRecord]?

    enum CodingKeys: String, CodingKey {
        case id, status, node, failures, reason, attempts, events
        case attemptCount = "attempt_count"
        case pendingReason = "pending_reason"
        case notBefore = "not_before"
        case deadlineRisk = "deadline_risk"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public init(
        id: UUID, status: TaskStatus, spec: TaskSpec, node: String?, attemptCount: Int, failures: Int,
        pendingReason: String?, reason: String?, notBefore: String?, createdAt: String, updatedAt: String,
        deadlineRisk: String? = nil
    ) {
        self.id = id
        self.status = status
        self.spec = spec
        self.node = node
        self.attemptCount = attemptCount
        self.failures = failures
        self.pendingReason = pendingReason
        self.reason = reason
        self.notBefore = notBefore
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.deadlineRisk = deadlineRisk
    }

    // The spec's fields sit beside the record's own, as DESIGN.md §9 shows a task.
    public init(from decoder: any Decoder) throws {
        spec = try TaskSpec(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(UUID.self, forKey: .id)
        status = try c.decode(TaskStatus.self, forKey: .status)
        node = try c.decodeIfPresent(String.self, forKey: .node)
        attemptCount = try c.decode(Int.self, forKey: .attemptCount)
        failures = try c.decode(Int.self, forKey: .failures)
        pendingReason = try c.decodeIfPresent(String.self, forKey: .pendingReason)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        notBefore = try c.decodeIfPresent(String.self, forKey: .notBefore)
        deadlineRisk = try c.decodeIfPresent(String.self, forKey: .deadlineRisk)
        createdAt = try c.decode(String.self, forKey: .createdAt)
        updatedAt = try c.decode(String.self, forKey: .updatedAt)
        attempts = try c.decodeIfPresent([AttemptRecord].self, forKey: .attempts)
        events = try c.decodeIfPresent([EventRecord].self, forKey: .events)
    }

    public func encode(to encoder: any Encoder) throws {
        try spec.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(status, forKey: .status)
        try c.encode(node, forKey: .node)
        try c.encode(attemptCount, forKey: .attemptCount)
        try c.encode(failures, forKey: .failures)
        try c.encode(pendingReason, forKey: .pendingReason)
        try c.encode(reason, forKey: .reason)
        try c.encode(notBefore, forKey: .notBefore)
        try c.encodeIfPresent(deadlineRisk, forKey: .deadlineRisk)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encodeIfPresent(attempts, forKey: .attempts)
        try c.encodeIfPresent(events, forKey: .events)
    }
}

extension TaskRecord {
    /// What a read-only token sees: the task's environment values and its stdin may hold
    /// secrets, so they read `<redacted>` (the variable names stay, to tell what was set).
    public static let redactedValue = "<redacted>"

    public var redacted: TaskRecord {
        var copy = self
        copy.spec.env = spec.env.mapValues { _ in Self.redactedValue }
        copy.spec.stdin = spec.stdin.map { _ in Self.redactedValue }
        return copy
    }
}

/// One placement of a task on a node, and how it went.
public struct AttemptRecord: Sendable, Codable, Equatable {
    public var id: UUID
    public var number: Int
    public var node: String
    public var status: AttemptStatus
    public var epoch: Int
    public var score: PlacementScore?
    public var queuedAt: String
    public var publishedAt: String?
    public var startedAt: String?
    public var finishedAt: String?
    public var exitCode: Int?
    public var cpuSeconds: Double?
    public var peakMemoryMB: Double?
    public var stdoutTail: String?
    public var stderrTail: String?
    /// True when the tails are not byte for byte the program's output (invalid UTF-8 or NUL
    /// bytes were replaced by U+FFFD to store them).
    public var outputLossy: Bool?
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case id, number, node, status, epoch, score, reason
        case outputLossy = "output_lossy"
        case queuedAt = "queued_at"
        case publishedAt = "published_at"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case exitCode = "exit_code"
        case cpuSeconds = "cpu_seconds"
        case peakMemoryMB = "peak_memory_mb"
        case stdoutTail = "stdout_tail"
        case stderrTail = "stderr_tail"
    }
}

/// One row of a task's audit trail.
public struct EventRecord: Sendable, Codable, Equatable {
    public var id: Int
    public var attemptID: UUID?
    /// submitted, queued, started, finished, retry, lost, cancelled, ignored, ...
    public var kind: String
    /// The task status it led to.
    public var status: String?
    public var detail: String?
    public var at: String

    enum CodingKeys: String, CodingKey {
        case id, kind, status, detail, at
        case attemptID = "attempt_id"
    }
}

/// A registered fog node as `GET /v1/nodes` shows it.
public struct NodeRecord: Sendable, Codable, Equatable {
    public var id: String
    public var alive: Bool
    public var zone: String?
    public var capacity: Resources?
    public var labels: [String: String]?
    public var latencyMS: [String: Double]?
    public var power: FogNodeInfo.Power?
    public var speed: Double?
    /// What queued and running attempts hold on it, from the store.
    public var reserved: Resources
    public var activeAttempts: Int
    /// Its latest heartbeat.
    public var load: NodeLoad?
    public var heartbeatAgeSeconds: Double?
    /// Why its registration could not be read, if it could not.
    public var problem: String?

    enum CodingKeys: String, CodingKey {
        case id, alive, zone, capacity, labels, power, speed, reserved, load, problem
        case latencyMS = "latency_ms"
        case activeAttempts = "active_attempts"
        case heartbeatAgeSeconds = "heartbeat_age_s"
    }
}
