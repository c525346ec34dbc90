/// The task lifecycle of DESIGN.md §6 as a pure function from (what the store holds, what
/// happened) to what to write. The event consumer, the failure detector and the timeout
/// backstop all go through it, so every path retries and ends tasks by the same rules:
///
/// - `succeeded` ends the task.
/// - `failed` and `timed_out` count as a failure; the task is retried after a backoff until it
///   has failed `max_attempts` times, then it is `dead`.
/// - `resource_exceeded` ends the task: the same limits would be exceeded again.
/// - `rejected` (the node refused the command) ends the task as `failed`.
/// - `interrupted` (a draining node), a node lost before the attempt started and an attempt
///   whose message never reached its node retry at once without counting as a failure; a node
///   lost while the attempt ran counts as one.
public enum TaskLifecycle {
    /// What the store holds about the attempt an event names, read under a row lock.
    public struct Snapshot: Sendable, Equatable {
        public var taskStatus: TaskStatus
        public var attemptStatus: AttemptStatus
        /// The attempt is the task's current one (not superseded by a later placement).
        public var isCurrent: Bool
        public var failures: Int
        public var maxAttempts: Int

        public init(taskStatus: TaskStatus, attemptStatus: AttemptStatus, isCurrent: Bool, failures: Int, maxAttempts: Int) {
            self.taskStatus = taskStatus
            self.attemptStatus = attemptStatus
            self.isCurrent = isCurrent
            self.failures = failures
            self.maxAttempts = maxAttempts
        }
    }

    public enum Happening: Sendable, Equatable {
        case started
        case finished(AttemptOutcome)
        /// The attempt's node was declared lost.
        case nodeLost
        /// The scheduler's backstop found the attempt running past its timeout.
        case timeoutBackstop
        /// The scheduler's backstop found the attempt queued, its message published, but never
        /// started within the bound: the message is gone (purged, dead-lettered, dropped).
        case neverStarted
    }

    public enum Decision: Sendable, Equatable {
        /// Write nothing but an `ignored` event with this reason (a late or superseded event).
        case ignore(String)
        /// The same event was applied already: write nothing.
        case duplicate
        /// The attempt (and the task) are running.
        case start
        /// The attempt ends with `attempt`; the task becomes `task` with `failures` failures,
        /// and when `task` is pending it waits `retryAfterFailures` more failures' backoff
        /// (nil: retry at once).
        case end(attempt: AttemptStatus, task: TaskStatus, failures: Int, backoffFor: Int?)
    }

    public static func decide(_ happening: Happening, given s: Snapshot) -> Decision {
        switch happening {
        case .started:
            // Running, or ended by its node's own report: this start was applied already.
            if s.attemptStatus == .running || (s.isCurrent && ![.queued, .lost, .cancelled].contains(s.attemptStatus)) {
                return .duplicate
            }
            guard s.isCurrent, s.attemptStatus == .queued, !s.taskStatus.isTerminal else {
                return .ignore("started for an attempt that is \(s.attemptStatus.rawValue) (task \(s.taskStatus.rawValue))")
            }
            return .start
        case .finished(let outcome):
            if s.attemptStatus == outcome.attemptStatus { return .duplicate }
            guard s.isCurrent, s.attemptStatus.isActive, !s.taskStatus.isTerminal else {
                return .ignore("\(outcome.rawValue) for an attempt that is \(s.attemptStatus.rawValue) (task \(s.taskStatus.rawValue))")
            }
            return end(s, attempt: outcome.attemptStatus)
        case .nodeLost:
            guard s.attemptStatus.isActive else { return .duplicate }
            guard s.isCurrent, !s.taskStatus.isTerminal else {
                return .end(attempt: .lost, task: s.taskStatus, failures: s.failures, backoffFor: nil)
            }
            return end(s, attempt: .lost)
        case .timeoutBackstop:
            guard s.isCurrent, s.attemptStatus == .running, !s.taskStatus.isTerminal else { return .duplicate }
            return end(s, attempt: .timedOut)
        case .neverStarted:
            guard s.isCurrent, s.attemptStatus == .queued, !s.taskStatus.isTerminal else { return .duplicate }
            return end(s, attempt: .lost)
        }
    }

    private static func end(_ s: Snapshot, attempt: AttemptStatus) -> Decision {
        switch attempt {
        case .succeeded:
            return .end(attempt: .succeeded, task: .succeeded, failures: s.failures, backoffFor: nil)
        case .resourceExceeded:
            return .end(attempt: attempt, task: .resourceExceeded, failures: s.failures + 1, backoffFor: nil)
        case .rejected:
            return .end(attempt: attempt, task: .failed, failures: s.failures + 1, backoffFor: nil)
        case .cancelled:
            return .end(attempt: attempt, task: .cancelled, failures: s.failures, backoffFor: nil)
        case .interrupted:
            return .end(attempt: attempt, task: .pending, failures: s.failures, backoffFor: nil)
        case .lost where s.attemptStatus == .queued:
            return .end(attempt: attempt, task: .pending, failures: s.failures, backoffFor: nil)
        default:
            let failures = s.failures + 1
            if failures >= s.maxAttempts { return .end(attempt: attempt, task: .dead, failures: failures, backoffFor: nil) }
            return .end(attempt: attempt, task: .pending, failures: failures, backoffFor: failures)
        }
    }
}

/// When a failed task may run again: exponential backoff with equal jitter, capped.
public struct RetryPolicy: Sendable, Equatable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(60)) {
        self.base = base
        self.cap = cap
    }

    /// The wait after the `failures`-th failure; `random` in 0...1 picks within the jitter.
    public func delay(afterFailures failures: Int, random: Double) -> Duration {
        let exponent = Double(max(0, min(failures - 1, 30)))
        let ceiling = min(base * Int(1 << Int(exponent)), cap)
        return ceiling / 2 + ceiling * (random / 2)
    }
}
