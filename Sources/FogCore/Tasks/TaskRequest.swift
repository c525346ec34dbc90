import Foundation

/// A task as a client sends it (DESIGN.md §9): every field optional and loosely typed, so that
/// `validated()` can name each wrong field instead of failing on the first.
public struct TaskRequest: Sendable, Decodable, Equatable {
    public struct RequestedResources: Sendable, Decodable, Equatable {
        public var cpuMillicores: Int?
        public var memoryMB: Int?
        public var storageMB: Int?

        enum CodingKeys: String, CodingKey {
            case cpuMillicores = "cpu_millicores"
            case memoryMB = "memory_mb"
            case storageMB = "storage_mb"
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
    /// The request's own shape (unknown fields, names of kinds, classes and policies, the
    /// deadline's format) is checked here; every limit is `TaskSpec.problems`.
    public func validated() throws(TaskValidationError) -> TaskSpec {
        var problems: [String: String] = [:]
        for field in unknownFields { problems[field] = "unknown field" }

        let name = self.name ?? kind ?? command?.first.map { String($0.split(separator: "/").last ?? "task") } ?? "task"
        var builtin: BuiltinKind?
        if let kindName = kind {
            builtin = BuiltinKind(rawValue: kindName)
            if builtin == nil {
                problems["kind"] = "must be one of \(BuiltinKind.allCases.map(\.rawValue).joined(separator: ", "))"
            }
        }
        let priority = PriorityClass(rawValue: self.priority ?? PriorityClass.normal.rawValue)
        if priority == nil {
            problems["class"] = "must be one of \(PriorityClass.consumptionOrder.map(\.rawValue).joined(separator: ", "))"
        }
        var deadline: String?
        if let text = self.deadline {
            deadline = RFC3339.parse(text).map(RFC3339.format)
            if deadline == nil { problems["deadline"] = "must be an RFC 3339 time such as 2026-11-23T12:00:05Z" }
        }
        var deadlinePolicy: DeadlinePolicy?
        if let text = self.deadlinePolicy {
            deadlinePolicy = DeadlinePolicy(rawValue: text)
            if deadlinePolicy == nil {
                problems["deadline_policy"] = "must be one of \(DeadlinePolicy.allCases.map(\.rawValue).joined(separator: ", "))"
            }
        }
        let spec = TaskSpec(
            name: name, command: command, kind: builtin, args: args ?? .init(), priority: priority ?? .normal,
            resources: Resources(
                cpuMillicores: resources?.cpuMillicores ?? Resources.taskDefault.cpuMillicores,
                memoryMB: resources?.memoryMB ?? Resources.taskDefault.memoryMB,
                storageMB: resources?.storageMB ?? Resources.taskDefault.storageMB),
            constraints: TaskSpec.Constraints(
                labels: constraints?.labels ?? [:], zone: constraints?.zone,
                origin: constraints?.origin, maxLatencyMS: constraints?.maxLatencyMS),
            deadline: deadline, timeoutSeconds: timeoutSeconds ?? 300, expectedSeconds: expectedSeconds, deadlinePolicy: deadlinePolicy,
            maxAttempts: maxAttempts ?? 3, affinityKey: affinityKey, env: env ?? [:], stdin: stdin, idempotencyKey: idempotencyKey)
        for (field, reason) in spec.problems where problems[field] == nil {
            // An unknown kind is named as such, not again as a missing command.
            if field == "command" && problems["kind"] != nil && command == nil { continue }
            problems[field] = reason
        }
        guard problems.isEmpty else { throw TaskValidationError(fields: problems) }
        return spec
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
