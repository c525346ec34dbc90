/// Where a task is in its lifecycle (docs/ARCHITECTURE.md, "Task lifecycle").
public enum TaskStatus: String, Sendable, Codable, CaseIterable {
    case pending, queued, running
    case succeeded, failed
    case timedOut = "timed_out"
    case resourceExceeded = "resource_exceeded"
    case dead, cancelled

    /// A task in one of these states never changes again.
    public var isTerminal: Bool {
        switch self {
        case .pending, .queued, .running: false
        default: true
        }
    }
}

/// Where one attempt (one placement of a task on a node) is.
public enum AttemptStatus: String, Sendable, Codable, CaseIterable {
    case queued, running, succeeded, failed
    case timedOut = "timed_out"
    case resourceExceeded = "resource_exceeded"
    /// The node stopped it while draining; it is retried without counting as a failure.
    case interrupted
    /// The node refused to run it (a command outside the allow-list, an invalid message).
    case rejected
    /// Its node was declared lost while it was queued or running there.
    case lost
    case cancelled

    /// Queued or running: the attempt holds room on its node.
    public var isActive: Bool { self == .queued || self == .running }
}

/// How an attempt ended, as a fog node reports it in a `finished` event.
public enum AttemptOutcome: String, Sendable, Codable, CaseIterable {
    case succeeded, failed
    case timedOut = "timed_out"
    case resourceExceeded = "resource_exceeded"
    case interrupted, rejected, cancelled

    public var attemptStatus: AttemptStatus {
        switch self {
        case .succeeded: .succeeded
        case .failed: .failed
        case .timedOut: .timedOut
        case .resourceExceeded: .resourceExceeded
        case .interrupted: .interrupted
        case .rejected: .rejected
        case .cancelled: .cancelled
        }
    }
}
