import Foundation

/// A task as a client sends it (DESIGN.md §9): every field optional and loosely typed, so that
/// `validated()` can name each wrong field instead of failing on the first.
public struct TaskRequest: Sendable, Decodable, Equatable {
    public struct RequestedResources: Sendable, Decodable, Equatable {
        public var cpuMillicores: Int?
        public var memoryMB: Int?
        public var storageMB: Int?

        enum CodingKeys: String, CodingKey {
            case cpuMillicores = "cpu_millicores", memoryMB = "memory_mb", storageMB = "storage_mb"
        }
    }

    public struct RequestedConstraints: Sendable, Decodable, Equatable {
        public var labels: [String: String]?
        public var zone: String?
        public var origin: String?
        public var maxLatencyMS: Int?

        enum CodingKeys: String, CodingKey {
            case labels, zone, origin
            case maxLatencyMS = "max_latency_ms"
        }
    }

    public var name: String?
    public var command: [String]?
    public var kind: String?
    public var args: BuiltinArguments?
    public var priority: String?
    public var resources: RequestedResources?
    public var constraints: RequestedConstraints?
    public var deadline: String?
    public var timeoutSeconds: Double?
    public var expectedSeconds: Double?
    public var deadlinePolicy: String?
    public var maxAttempts: Int?
    public var affinityKey: String?
    public var env: [String: String]?
    public var stdin: String?
    public var idempotencyKey: String?
    /// Top-level keys that no field has: refused, so that a typo is not silently ignored.
    public var unknownFields: [String] = []

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, command, kind, args, resources, constraints, deadline, env, stdin
        case priority = "class"
        case timeoutSeconds = "timeout_s"
        case expectedSeconds = "expected_s"
        case deadlinePolicy = "deadline_policy"
        case maxAttempts = "max_attempts"
        case affinityKey = "affinity_key"
        case idempotencyKey = "idempotency_key"
    }

    public init(name: String? = nil, command: [String]? = nil, kind: String? = nil, priority: String? = nil) {
        self.name = name
        self.command = command
        self.kind = kind
        self.priority = priority
    }

    public init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: AnyCodingKey.self).allKeys.map(\.stringValue)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        unknownFields = keys.filter { !known.contains($0) }.sorted()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        command = try c.decodeIfPresent([String].self, forKey: .command)
        kind = try c.decodeIfPresent(String.self, forKey: .kind)
        args = try c.decodeIfPresent(BuiltinArguments.self, forKey: .args)
        priority = try c.decodeIfPresent(String.self, forKey: .priority)
        resources = try c.decodeIfPresent(RequestedResources.self, forKey: .resources)
        constraints = try c.decodeIfPresent(RequestedConstraints.self, forKey: .constraints)
        deadline = try c.decodeIfPresent(String.self, forKey: .deadline)
        timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
        expectedSeconds = try c.decodeIfPresent(Double.self, forKey: .expectedSeconds)
        deadlinePolicy = try c.decodeIfPresent(String.self, forKey: .deadlinePolicy)
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts)
        affinityKey = try c.decodeIfPresent(String.self, forKey: .affinityKey)
        env = try c.decodeIfPresent([String: String].self, forKey: .env)
        stdin = try c.decodeIfPresent(String.self, forKey: .stdin)
        idempotencyKey = try c.decodeIfPresent(String.self, forKey: .idempotencyKey)
    }
}

/// The limits a task request must keep (documented in docs/API.md).
public enum TaskLimits {
    public static let maxNameLength = 200
    public static let maxArguments = 1_024
    public static let maxCommandBytes = 64 * 1024
    public static let maxEnvironmentEntries = 128
    public static let maxEnvironmentBytes = 64 * 1024
    public static let maxStdinBytes = 64 * 1024
    public static let maxLabels = 32
    public static let maxKeyLength = 200
    public static let cpuMillicores = 1...1_024_000
    public static let memoryMB = 1...4_194_304
    public static let storageMB = 0...16_777_216
    public static let timeoutSeconds = 0.001...604_800.0
    public static let maxAttempts = 1...50
    public static let maxLatencyMS = 0...600_000
    public static let builtinSeconds = 0.0...86_400.0
    public static let maxBatch = 1_000
}

/// A request that cannot become a task: the reason for each field, by its dotted name.
public struct TaskValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var fields: [String: String]

    public init(fields: [String: String]) { self.fields = fields }

    public var description: String {
        fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
    }
}

extension TaskRequest {
    /// The task this request describes, every default applied, or every problem with it.
    public func validated() throws(TaskValidationError) -> TaskSpec {
        var problems: [String: String] = [:]
        for field in unknownFields { problems[field] = "unknown field" }

        let name = self.name ?? kind ?? command?.first.map { String($0.split(separator: "/").last ?? "task") } ?? "task"
        if name.isEmpty || name.utf8.count > TaskLimits.maxNameLength {
            problems["name"] = "must be 1 to \(TaskLimits.maxNameLength) bytes"
        }

        var builtin: BuiltinKind?
        switch (command, kind) {
        case (nil, nil), (.some, .some):
            problems["command"] = "exactly one of command and kind must be set"
        case (let argv?, nil):
            if let reason = Self.problem(withCommand: argv) { problems["command"] = reason }
        case (nil, let kindName?):
            builtin = BuiltinKind(rawValue: kindName)
            if builtin == nil {
                problems["kind"] = "must be one of \(BuiltinKind.allCases.map(\.rawValue).joined(separator: ", "))"
            }
        }
        if let args {
            if let seconds = args.seconds, !TaskLimits.builtinSeconds.contains(seconds) {
                problems["args.seconds"] = "must be between 0 and \(Int(TaskLimits.builtinSeconds.upperBound))"
            }
            if let millicores = args.millicores, !TaskLimits.cpuMillicores.contains(millicores) {
                problems["args.millicores"] = "must be between 1 and \(TaskLimits.cpuMillicores.upperBound)"
            }
            if let mb = args.mb, !TaskLimits.memoryMB.contains(mb) {
                problems["args.mb"] = "must be between 1 and \(TaskLimits.memoryMB.upperBound)"
            }
            if let code = args.exitCode, !(0...255).contains(code) { problems["args.exit_code"] = "must be between 0 and 255" }
        }

        let priority = PriorityClass(rawValue: self.priority ?? PriorityClass.normal.rawValue)
        if priority == nil {
            problems["class"] = "must be one of \(PriorityClass.consumptionOrder.map(\.rawValue).joined(separator: ", "))"
        }

        let cpu = resources?.cpuMillicores ?? Resources.taskDefault.cpuMillicores
        let memory = resources?.memoryMB ?? Resources.taskDefault.memoryMB
        let storage = resources?.storageMB ?? Resources.taskDefault.storageMB
        if !TaskLimits.cpuMillicores.contains(cpu) {
            problems["resources.cpu_millicores"] = "must be between 1 and \(TaskLimits.cpuMillicores.upperBound)"
        }
        if !TaskLimits.memoryMB.contains(memory) {
            problems["resources.memory_mb"] = "must be between 1 and \(TaskLimits.memoryMB.upperBound)"
        }
        if !TaskLimits.storageMB.contains(storage) {
            problems["resources.storage_mb"] = "must be between 0 and \(TaskLimits.storageMB.upperBound)"
        }

        let constraints = TaskSpec.Constraints(
            labels: self.constraints?.labels ?? [:], zone: self.constraints?.zone,
            origin: self.constraints?.origin, maxLatencyMS: self.constraints?.maxLatencyMS)
        if constraints.labels.count > TaskLimits.maxLabels { problems["constraints.labels"] = "at most \(TaskLimits.maxLabels) labels" }
        if let latency = constraints.maxLatencyMS {
            if !TaskLimits.maxLatencyMS.contains(latency) {
                problems["constraints.max_latency_ms"] = "must be between 0 and \(TaskLimits.maxLatencyMS.upperBound)"
            } else if constraints.origin == nil {
                problems["constraints.origin"] = "is required when max_latency_ms is set"
            }
        }

        var deadline: String?
        if let text = self.deadline {
            deadline = RFC3339.parse(text).map(RFC3339.format)
            if deadline == nil { problems["deadline"] = "must be an RFC 3339 time such as 2026-11-23T12:00:05Z" }
        }
        let timeout = timeoutSeconds ?? 300
        if !TaskLimits.timeoutSeconds.contains(timeout) {
            problems["timeout_s"] = "must be more than 0 and at most \(Int(TaskLimits.timeoutSeconds.upperBound))"
        }
        if let expected = expectedSeconds, !TaskLimits.timeoutSeconds.contains(expected) {
            problems["expected_s"] = "must be more than 0 and at most \(Int(TaskLimits.timeoutSeconds.upperBound))"
        }
        var deadlinePolicy: DeadlinePolicy?
        if let text = self.deadlinePolicy {
            deadlinePolicy = DeadlinePolicy(rawValue: text)
            if deadlinePolicy == nil {
                problems["deadline_policy"] = "must be one of \(DeadlinePolicy.allCases.map(\.rawValue).joined(separator: ", "))"
            }
        }
        let maxAttempts = self.maxAttempts ?? 3
        if !TaskLimits.maxAttempts.contains(maxAttempts) {
            problems["max_attempts"] = "must be between 1 and \(TaskLimits.maxAttempts.upperBound)"
        }
        for (field, value) in [("affinity_key", affinityKey), ("idempotency_key", idempotencyKey)] {
            if let value, value.isEmpty || value.utf8.count > TaskLimits.maxKeyLength {
                problems[field] = "must be 1 to \(TaskLimits.maxKeyLength) bytes"
            }
        }
        let env = self.env ?? [:]
        if env.count > TaskLimits.maxEnvironmentEntries
            || env.reduce(0, { $0 + $1.key.utf8.count + $1.value.utf8.count }) > TaskLimits.maxEnvironmentBytes
        {
            problems["env"] = "at most \(TaskLimits.maxEnvironmentEntries) entries and \(TaskLimits.maxEnvironmentBytes) bytes"
        } else if let bad = env.keys.first(where: { $0.isEmpty || $0.contains("=") || $0.contains("\0") })
            ?? env.first(where: { $0.value.contains("\0") })?.key
        {
            problems["env"] = "'\(bad.prefix(40))' is not a valid variable (no '=', no NUL, not empty)"
        }
        if let stdin {
            if let bytes = Data(base64Encoded: stdin) {
                if bytes.count > TaskLimits.maxStdinBytes { problems["stdin"] = "at most \(TaskLimits.maxStdinBytes) bytes once decoded" }
            } else {
                problems["stdin"] = "must be base64"
            }
        }

        guard problems.isEmpty, let priority else { throw TaskValidationError(fields: problems) }
        return TaskSpec(
            name: name, command: command, kind: builtin, args: args ?? .init(), priority: priority,
            resources: Resources(cpuMillicores: cpu, memoryMB: memory, storageMB: storage), constraints: constraints,
            deadline: deadline, timeoutSeconds: timeout, expectedSeconds: expectedSeconds, deadlinePolicy: deadlinePolicy,
            maxAttempts: maxAttempts, affinityKey: affinityKey,
            env: env, stdin: stdin, idempotencyKey: idempotencyKey)
    }

    private static func problem(withCommand argv: [String]) -> String? {
        guard let program = argv.first, !program.isEmpty else { return "must name a program" }
        if argv.count > TaskLimits.maxArguments { return "at most \(TaskLimits.maxArguments) arguments" }
        if argv.reduce(0, { $0 + $1.utf8.count }) > TaskLimits.maxCommandBytes {
            return "at most \(TaskLimits.maxCommandBytes) bytes in all"
        }
        if argv.contains(where: { $0.contains("\0") }) { return "arguments cannot contain NUL" }
        return nil
    }
}

/// A coding key for any name, to list the keys an object has.
public struct AnyCodingKey: CodingKey {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}
