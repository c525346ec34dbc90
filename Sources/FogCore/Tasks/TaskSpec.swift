/// A task as the scheduler stores it and a fog node runs it: validated, with every default
/// applied. Built from a client's request by `TaskRequest.validated()`.
public struct TaskSpec: Sendable, Codable, Equatable {
    /// Where a task may run, beyond having room.
    public struct Constraints: Sendable, Codable, Equatable {
        /// Labels the node must carry, each with this value.
        public var labels: [String: String]
        /// The only zone the node may be in.
        public var zone: String?
        /// The zone the task's data comes from (its IoT devices): latency is measured from here.
        public var origin: String?
        /// The most network latency from `origin` to the node that the task accepts.
        public var maxLatencyMS: Int?

        public init(labels: [String: String] = [:], zone: String? = nil, origin: String? = nil, maxLatencyMS: Int? = nil) {
            self.labels = labels
            self.zone = zone
            self.origin = origin
            self.maxLatencyMS = maxLatencyMS
        }

        enum CodingKeys: String, CodingKey {
            case labels, zone, origin
            case maxLatencyMS = "max_latency_ms"
        }
    }

    public var name: String
    /// The program and its arguments (never a shell string); nil for a built-in kind.
    public var command: [String]?
    /// A built-in kind, for tests and demos; nil for a command.
    public var kind: BuiltinKind?
    public var args: BuiltinArguments
    public var priority: PriorityClass
    public var resources: Resources
    public var constraints: Constraints
    /// An RFC 3339 UTC time (normalised by validation); `deadlineSeconds` is the same instant.
    public var deadline: String?
    public var timeoutSeconds: Double
    /// How long the task is expected to run on a node of speed 1.0, as the client estimates
    /// it: placement uses it for completion times and deadline checks.
    public var expectedSeconds: Double?
    /// What submit does with a deadline that no live node can meet; nil is `.flag`.
    public var deadlinePolicy: DeadlinePolicy?
    public var maxAttempts: Int
    public var affinityKey: String?
    public var env: [String: String]
    /// The task's standard input, base64 as the client sent it.
    public var stdin: String?
    public var idempotencyKey: String?

    public init(
        name: String, command: [String]? = nil, kind: BuiltinKind? = nil, args: BuiltinArguments = .init(),
        priority: PriorityClass = .normal, resources: Resources = .taskDefault, constraints: Constraints = .init(),
        deadline: String? = nil, timeoutSeconds: Double = 300, expectedSeconds: Double? = nil,
        deadlinePolicy: DeadlinePolicy? = nil, maxAttempts: Int = 3, affinityKey: String? = nil,
        env: [String: String] = [:], stdin: String? = nil, idempotencyKey: String? = nil
    ) {
        self.name = name
        self.command = command
        self.kind = kind
        self.args = args
        self.priority = priority
        self.resources = resources
        self.constraints = constraints
        self.deadline = deadline
        self.timeoutSeconds = timeoutSeconds
        self.expectedSeconds = expectedSeconds
        self.deadlinePolicy = deadlinePolicy
        self.maxAttempts = maxAttempts
        self.affinityKey = affinityKey
        self.env = env
        self.stdin = stdin
        self.idempotencyKey = idempotencyKey
    }

    public var deadlineSeconds: Double? { deadline.flatMap(RFC3339.parse) }

    /// The run time placement assumes on a node of speed 1.0: the client's estimate, else a
    /// built-in's own duration, else nil (unknown).
    public var estimatedSeconds: Double? { expectedSeconds ?? args.seconds }

    enum CodingKeys: String, CodingKey {
        case name, command, kind, args, resources, constraints, deadline, env, stdin
        case priority = "class"
        case timeoutSeconds = "timeout_s"
        case expectedSeconds = "expected_s"
        case deadlinePolicy = "deadline_policy"
        case maxAttempts = "max_attempts"
        case affinityKey = "affinity_key"
        case idempotencyKey = "idempotency_key"
    }
}

/// What submit does with a deadline that no live node can meet in time.
public enum DeadlinePolicy: String, Sendable, Codable, CaseIterable {
    /// Accept the task and record why its deadline is at risk.
    case flag
    /// Refuse the task with 422 `deadline_unreachable`.
    case refuse
}

/// The built-in kinds a fog node runs without a client program.
public enum BuiltinKind: String, Sendable, Codable, CaseIterable {
    /// Completes at once inside the fog node: measures the scheduling path alone.
    case noop
    /// Sleeps `seconds`.
    case sleep
    /// Burns `millicores` of CPU for `seconds`.
    case cpu
    /// Touches `mb` megabytes of memory, then holds them for `seconds`.
    case alloc
}

/// The arguments of a built-in kind.
public struct BuiltinArguments: Sendable, Codable, Equatable {
    public var seconds: Double?
    public var millicores: Int?
    public var mb: Int?
    /// The exit status the built-in ends with (default 0): lets tests and demos fail on purpose.
    public var exitCode: Int?

    public init(seconds: Double? = nil, millicores: Int? = nil, mb: Int? = nil, exitCode: Int? = nil) {
        self.seconds = seconds
        self.millicores = millicores
        self.mb = mb
        self.exitCode = exitCode
    }

    enum CodingKeys: String, CodingKey {
        case seconds, millicores, mb
        case exitCode = "exit_code"
    }
}
