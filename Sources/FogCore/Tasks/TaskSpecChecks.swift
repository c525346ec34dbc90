import Foundation

/// What a task may ask for, checked on the spec itself: the API checks every request with it
/// (`TaskRequest.validated()`), and a fog node checks every message it is given, since a spec
/// that came over the broker is outside input too. A spec without problems converts to the
/// node's limits (bytes, microseconds, milliseconds) without any overflow.
extension TaskSpec {
    /// Every field that breaks `TaskLimits`, by its dotted name; empty when the spec may run.
    public var problems: [String: String] {
        var problems: [String: String] = [:]
        if let reason = TaskLimits.problem(withText: name, maxBytes: TaskLimits.maxNameLength) { problems["name"] = reason }
        switch (command, kind) {
        case (nil, nil), (.some, .some): problems["command"] = "exactly one of command and kind must be set"
        case (let argv?, nil): if let reason = TaskLimits.problem(withCommand: argv) { problems["command"] = reason }
        case (nil, .some): break
        }
        problems.merge(args.problems) { first, _ in first }
        if !TaskLimits.cpuMillicores.contains(resources.cpuMillicores) {
            problems["resources.cpu_millicores"] = "must be between 1 and \(TaskLimits.cpuMillicores.upperBound)"
        }
        if !TaskLimits.memoryMB.contains(resources.memoryMB) {
            problems["resources.memory_mb"] = "must be between 1 and \(TaskLimits.memoryMB.upperBound)"
        }
        if !TaskLimits.storageMB.contains(resources.storageMB) {
            problems["resources.storage_mb"] = "must be between 0 and \(TaskLimits.storageMB.upperBound)"
        }
        problems.merge(constraints.problems) { first, _ in first }
        if let deadline, deadlineSeconds == nil || TaskLimits.problem(withText: deadline, maxBytes: 64) != nil {
            problems["deadline"] = "must be an RFC 3339 time such as 2026-11-23T12:00:05Z"
        }
        if !TaskLimits.timeoutSeconds.contains(timeoutSeconds) {
            problems["timeout_s"] = "must be more than 0 and at most \(Int(TaskLimits.timeoutSeconds.upperBound))"
        }
        if let expected = expectedSeconds, !TaskLimits.timeoutSeconds.contains(expected) {
            problems["expected_s"] = "must be more than 0 and at most \(Int(TaskLimits.timeoutSeconds.upperBound))"
        }
        if !TaskLimits.maxAttempts.contains(maxAttempts) {
            problems["max_attempts"] = "must be between 1 and \(TaskLimits.maxAttempts.upperBound)"
        }
        for (field, value) in [("affinity_key", affinityKey), ("idempotency_key", idempotencyKey)] {
            if let value, let reason = TaskLimits.problem(withText: value, maxBytes: TaskLimits.maxKeyLength) { problems[field] = reason }
        }
        if let reason = TaskLimits.problem(withEnvironment: env) { problems["env"] = reason }
        if let stdin {
            if let bytes = Data(base64Encoded: stdin) {
                if bytes.count > TaskLimits.maxStdinBytes { problems["stdin"] = "at most \(TaskLimits.maxStdinBytes) bytes once decoded" }
            } else {
                problems["stdin"] = "must be base64"
            }
        }
        return problems
    }
}

extension BuiltinArguments {
    var problems: [String: String] {
        var problems: [String: String] = [:]
        if let seconds, !TaskLimits.builtinSeconds.contains(seconds) {
            problems["args.seconds"] = "must be between 0 and \(Int(TaskLimits.builtinSeconds.upperBound))"
        }
        if let millicores, !TaskLimits.cpuMillicores.contains(millicores) {
            problems["args.millicores"] = "must be between 1 and \(TaskLimits.cpuMillicores.upperBound)"
        }
        if let mb, !TaskLimits.memoryMB.contains(mb) { problems["args.mb"] = "must be between 1 and \(TaskLimits.memoryMB.upperBound)" }
        if let exitCode, !(0...255).contains(exitCode) { problems["args.exit_code"] = "must be between 0 and 255" }
        return problems
    }
}

extension TaskSpec.Constraints {
    var problems: [String: String] {
        var problems: [String: String] = [:]
        if labels.count > TaskLimits.maxLabels {
            problems["constraints.labels"] = "at most \(TaskLimits.maxLabels) labels"
        } else if let bad = labels.first(where: {
            TaskLimits.problem(withText: $0.key, maxBytes: TaskLimits.maxKeyLength) != nil
                || TaskLimits.problem(withText: $0.value, maxBytes: TaskLimits.maxKeyLength, mayBeEmpty: true) != nil
        }) {
            problems["constraints.labels"] = "'\(bad.key.prefix(40))': keys and values of 1 to \(TaskLimits.maxKeyLength) bytes, no NUL"
        }
        for (field, value) in [("constraints.zone", zone), ("constraints.origin", origin)] {
            if let value, let reason = TaskLimits.problem(withText: value, maxBytes: TaskLimits.maxKeyLength) { problems[field] = reason }
        }
        if let latency = maxLatencyMS {
            if !TaskLimits.maxLatencyMS.contains(latency) {
                problems["constraints.max_latency_ms"] = "must be between 0 and \(TaskLimits.maxLatencyMS.upperBound)"
            } else if origin == nil {
                problems["constraints.origin"] = "is required when max_latency_ms is set"
            }
        }
        return problems
    }
}

extension TaskLimits {
    /// The variables the dynamic loader and glibc read before `main` (glibc's own list of what
    /// it drops for set-user-ID programs, and every `LD_` name). A task never sets them: with
    /// one of them any allow-listed program runs code the submitter chose.
    public static let loaderVariables: Set<String> = [
        "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE", "NIS_PATH", "NLSPATH",
        "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR", "MALLOC_CHECK_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES",
    ]

    /// True for a variable the dynamic loader reads.
    public static func isLoaderVariable(_ name: String) -> Bool {
        name.hasPrefix("LD_") || loaderVariables.contains(name)
    }

    static func problem(withText text: String, maxBytes: Int, mayBeEmpty: Bool = false) -> String? {
        if (!mayBeEmpty && text.isEmpty) || text.utf8.count > maxBytes { return "must be \(mayBeEmpty ? 0 : 1) to \(maxBytes) bytes" }
        if text.utf8.contains(0) { return "cannot contain NUL" }
        return nil
    }

    static func problem(withCommand argv: [String]) -> String? {
        guard let program = argv.first, !program.isEmpty else { return "must name a program" }
        if argv.count > maxArguments { return "at most \(maxArguments) arguments" }
        if argv.reduce(0, { $0 + $1.utf8.count }) > maxCommandBytes { return "at most \(maxCommandBytes) bytes in all" }
        if argv.contains(where: { $0.utf8.contains(0) }) { return "arguments cannot contain NUL" }
        return nil
    }

    static func problem(withEnvironment env: [String: String]) -> String? {
        if env.count > maxEnvironmentEntries || env.reduce(0, { $0 + $1.key.utf8.count + $1.value.utf8.count }) > maxEnvironmentBytes {
            return "at most \(maxEnvironmentEntries) entries and \(maxEnvironmentBytes) bytes"
        }
        if let bad = env.keys.sorted().first(where: { $0.isEmpty || $0.contains("=") || $0.utf8.contains(0) })
            ?? env.keys.sorted().first(where: { env[$0]?.utf8.contains(0) == true })
        {
            return "'\(bad.prefix(40))' is not a valid variable (no '=', no NUL, not empty)"
        }
        if let loader = env.keys.sorted().first(where: isLoaderVariable) {
            return "'\(loader.prefix(40))' is read by the dynamic loader and cannot be set by a task"
        }
        return nil
    }
}
