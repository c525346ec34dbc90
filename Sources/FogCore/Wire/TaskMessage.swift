import Foundation

/// What the scheduler publishes to `fog.node.<node>.<class>`: one attempt of one task.
/// A fog node deduplicates by (`taskID`, `attemptID`): the scheduler republishes an
/// unconfirmed attempt with the same ids.
public struct TaskMessage: Sendable, Codable, Equatable {
    public var v: Int = WireFormat.version
    public var taskID: UUID
    public var attemptID: UUID
    public var attempt: Int
    /// The leader epoch that placed it.
    public var epoch: Int
    public var node: String
    public var spec: TaskSpec
    /// Which life of the node it was placed in: the `started_at` of the node's registration
    /// then. A node begins a new life when it starts and whenever it fences itself, and drops
    /// a message of an earlier life: the scheduler places such attempts again once it sees the
    /// new `started_at`. Absent from older schedulers' messages (never dropped).
    public var nodeStartedAt: Double?

    public init(taskID: UUID, attemptID: UUID, attempt: Int, epoch: Int, node: String, spec: TaskSpec, nodeStartedAt: Double? = nil) {
        self.taskID = taskID
        self.attemptID = attemptID
        self.attempt = attempt
        self.epoch = epoch
        self.node = node
        self.spec = spec
        self.nodeStartedAt = nodeStartedAt
    }

    enum CodingKeys: String, CodingKey {
        case v, attempt, epoch, node, spec
        case taskID = "task_id"
        case attemptID = "attempt_id"
        case nodeStartedAt = "node_started_at"
    }
}

/// Several attempts for one node and class in one message, sent with the AMQP `type`
/// property `fog.task-batch`: the scheduler sends one per node and class in a dispatch round
/// that places more than one there (a message, a quorum write and an ack for many attempts).
/// A fog node settles the delivery once it has settled every attempt in it; a redelivery
/// brings them all again, and the node drops those it started already.
public struct TaskBatch: Sendable, Codable, Equatable {
    public static let messageType = "fog.task-batch"
    /// The most attempts one message holds.
    public static let maxTasks = 100

    public var v: Int = WireFormat.version
    public var tasks: [TaskMessage]

    public init(tasks: [TaskMessage]) { self.tasks = tasks }
}

/// What a fog node tells the schedulers about an attempt, on `fog.events`.
public struct TaskEvent: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case started, finished
    }

    public var taskID: UUID
    public var attemptID: UUID
    public var node: String
    public var kind: Kind
    /// Seconds since 1970 when it happened on the node.
    public var at: Double
    /// How it ended (finished only).
    public var outcome: AttemptOutcome?
    public var exitCode: Int?
    public var cpuSeconds: Double?
    public var peakMemoryMB: Double?
    public var stdoutTail: String?
    public var stderrTail: String?
    /// True when the tails are not byte for byte what the program wrote: invalid UTF-8 or NUL
    /// bytes were replaced (by U+FFFD), so that they can be stored as text.
    public var outputLossy: Bool?
    public var reason: String?
    /// The leader epoch of the attempt's placement, copied from its `TaskMessage`.
    public var epoch: Int?

    public init(
        taskID: UUID, attemptID: UUID, node: String, kind: Kind, at: Double, outcome: AttemptOutcome? = nil,
        exitCode: Int? = nil, cpuSeconds: Double? = nil, peakMemoryMB: Double? = nil,
        stdoutTail: String? = nil, stderrTail: String? = nil, outputLossy: Bool? = nil, reason: String? = nil,
        epoch: Int? = nil
    ) {
        self.taskID = taskID
        self.attemptID = attemptID
        self.node = node
        self.kind = kind
        self.at = at
        self.outcome = outcome
        self.exitCode = exitCode
        self.cpuSeconds = cpuSeconds
        self.peakMemoryMB = peakMemoryMB
        self.stdoutTail = stdoutTail
        self.stderrTail = stderrTail
        self.outputLossy = outputLossy
        self.reason = reason
        self.epoch = epoch
    }

    enum CodingKeys: String, CodingKey {
        case node, kind, at, outcome, reason, epoch
        case outputLossy = "output_lossy"
        case taskID = "task_id"
        case attemptID = "attempt_id"
        case exitCode = "exit_code"
        case cpuSeconds = "cpu_seconds"
        case peakMemoryMB = "peak_memory_mb"
        case stdoutTail = "stdout_tail"
        case stderrTail = "stderr_tail"
    }
}

/// One `fog.events` message: the events a node had ready at once (batched when many attempts
/// end together).
public struct EventBatch: Sendable, Codable, Equatable {
    public var v: Int = WireFormat.version
    public var events: [TaskEvent]

    public init(events: [TaskEvent]) { self.events = events }

    /// The routing key on the `fog.events` topic exchange.
    public static func routingKey(node: String) -> String { "node.\(node)" }
}

/// A control-plane message on the `fog.cluster` fanout exchange.
public struct ControlMessage: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// Kill the named attempt if it runs on `node`.
        case cancel
    }

    public var v: Int = WireFormat.version
    public var kind: Kind
    public var node: String?
    public var taskID: UUID?
    public var attemptID: UUID?

    public init(kind: Kind, node: String? = nil, taskID: UUID? = nil, attemptID: UUID? = nil) {
        self.kind = kind
        self.node = node
        self.taskID = taskID
        self.attemptID = attemptID
    }

    enum CodingKeys: String, CodingKey {
        case v, kind, node
        case taskID = "task_id"
        case attemptID = "attempt_id"
    }
}
