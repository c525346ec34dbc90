import FogCore
import Foundation

/// A fog node's settings, from `FOG_*` variables (docs/CONFIGURATION.md). Capacity defaults
/// to what the host (or its cgroup) has; a node never holds database credentials.
public struct FogNodeConfiguration: Sendable {
    public var id: NodeID
    public var brokerURLs: String
    public var redisURL: String
    public var zone: String
    public var capacity: Resources
    public var labels: [String: String]
    public var latencyMS: [String: Double]
    public var power: FogNodeInfo.Power
    /// How fast this host runs work relative to a reference node (FOG_NODE_SPEED, default 1).
    public var speed: Double = 1
    /// Absolute program paths a task may run; empty allows none (built-in kinds only).
    public var allowedCommands: Set<String>
    public var heartbeatInterval: Duration = .seconds(2)
    public var heartbeatTTL: Duration = .seconds(6)
    public var drainTimeout: Duration = .seconds(30)
    /// Where each attempt gets a working directory of its own.
    public var workDirectory: String
    /// The most bytes of stdout and stderr kept per attempt (the tails reported).
    public var outputTailBytes = 4_096
    /// The user tasks run as when the node runs as root (never root itself).
    public var taskUser = "nobody"
    /// With this range (`FOG_TASK_UIDS=60000-60999`), each running attempt gets a uid (and a
    /// group of the same number) of its own, which no user or group of the host has: attempts
    /// of different submitters cannot see each other's processes or files.
    public var taskUIDs: ClosedRange<UInt32>?
    /// The most processes one attempt may have (pids.max, or RLIMIT_NPROC for the task user).
    public var maxProcessesPerAttempt = 256
    /// Whether to confine attempts in control groups when the node may write them.
    public var useCgroups = true

    public init(environment: [String: String]) throws {
        let settings = Settings(environment)
        let services = try ServiceEnvironment(environment: environment, required: [.broker, .redis])
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "fog-node"
        let idText = settings.string("FOG_NODE_ID") ?? host
        guard let id = NodeID(rawValue: idText) else {
            throw Settings.Invalid(name: "FOG_NODE_ID", value: idText, expected: "1-64 letters, digits, '-' or '_'")
        }
        self.id = id
        brokerURLs = services.brokerURLs ?? ""
        redisURL = services.redisURL ?? ""
        zone = settings.string("FOG_NODE_ZONE") ?? "default"
        let detected = HostResources.detect()
        capacity = Resources(
            cpuMillicores: try settings.int("FOG_NODE_CPU_MILLICORES", default: detected.cpuMillicores, in: 1...10_000_000),
            memoryMB: try settings.int("FOG_NODE_MEMORY_MB", default: detected.memoryMB, in: 1...100_000_000),
            storageMB: try settings.int("FOG_NODE_STORAGE_MB", default: detected.storageMB, in: 0...1_000_000_000))
        labels = try settings.map("FOG_NODE_LABELS")
        var latencies: [String: Double] = [:]
        for (zone, text) in try settings.map("FOG_NODE_LATENCIES") {
            guard let value = Double(text), value >= 0 else {
                throw Settings.Invalid(name: "FOG_NODE_LATENCIES", value: "\(zone)=\(text)", expected: "zone=milliseconds pairs")
            }
            latencies[zone] = value
        }
        latencyMS = latencies
        power = FogNodeInfo.Power(
            idleWatts: try settings.double("FOG_NODE_POWER_IDLE_W", default: 10),
            maxWatts: try settings.double("FOG_NODE_POWER_MAX_W", default: 50),
            batteryPercent: settings.string("FOG_NODE_BATTERY_PCT") == nil ? nil : try settings.double("FOG_NODE_BATTERY_PCT", default: 0))
        speed = try settings.double("FOG_NODE_SPEED", default: 1)
        guard speed > 0, speed <= 1_000 else {
            throw Settings.Invalid(name: "FOG_NODE_SPEED", value: "\(speed)", expected: "a number more than 0 and at most 1000")
        }
        allowedCommands = Set(settings.list("FOG_ALLOWED_COMMANDS"))
        heartbeatInterval = try settings.duration("FOG_HEARTBEAT_INTERVAL", default: heartbeatInterval)
        heartbeatTTL = try settings.duration("FOG_HEARTBEAT_TTL", default: heartbeatTTL)
        drainTimeout = try settings.duration("FOG_DRAIN_TIMEOUT", default: drainTimeout)
        workDirectory = settings.string("FOG_WORK_DIR") ?? "/var/tmp/fog-node/\(id.rawValue)"
        taskUser = settings.string("FOG_TASK_USER") ?? taskUser
        if let entry = getpwnam(taskUser), entry.pointee.pw_uid == 0 {
            throw Settings.Invalid(name: "FOG_TASK_USER", value: taskUser, expected: "an unprivileged user (tasks never run as root)")
        }
        if let text = settings.string("FOG_TASK_UIDS") {
            let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map {
                UInt32($0.trimmingCharacters(in: .whitespaces))
            }
            guard bounds.count == 2, let low = bounds[0], let high = bounds[1], low <= high, high - low < 1_000_000, high < UInt32.max
            else {
                throw Settings.Invalid(name: "FOG_TASK_UIDS", value: text, expected: "a range of unused uids such as 60000-60999")
            }
            if let problem = TaskUsers.problem(with: low...high) {
                throw Settings.Invalid(name: "FOG_TASK_UIDS", value: text, expected: "uids no user or group of this host has: \(problem)")
            }
            taskUIDs = low...high
        }
        if geteuid() == 0, taskUIDs == nil, getpwnam(taskUser) == nil {
            throw Settings.Invalid(
                name: "FOG_TASK_USER", value: taskUser, expected: "a user of this host (a root node never runs tasks as itself)")
        }
        maxProcessesPerAttempt = try settings.int("FOG_TASK_MAX_PROCESSES", default: maxProcessesPerAttempt, in: 1...100_000)
        useCgroups = try settings.bool("FOG_CGROUPS", default: useCgroups)
        try checkRegistration()
        guard heartbeatTTL >= heartbeatInterval * 2 else {
            throw Settings.Invalid(name: "FOG_HEARTBEAT_TTL", value: "\(heartbeatTTL)", expected: "at least twice FOG_HEARTBEAT_INTERVAL")
        }
    }
}

extension FogNodeConfiguration {
    /// The variable behind each field of the registration hash.
    static let variables = [
        "cpu_millicores": "FOG_NODE_CPU_MILLICORES", "memory_mb": "FOG_NODE_MEMORY_MB", "storage_mb": "FOG_NODE_STORAGE_MB",
        "zone": "FOG_NODE_ZONE", "labels": "FOG_NODE_LABELS", "latency_ms": "FOG_NODE_LATENCIES", "power_idle_w": "FOG_NODE_POWER_IDLE_W",
        "power_max_w": "FOG_NODE_POWER_MAX_W", "battery_pct": "FOG_NODE_BATTERY_PCT", "speed": "FOG_NODE_SPEED",
    ]

    /// The registration's `version`: 2 drops the task messages of an earlier life of the node
    /// (TaskMessage.nodeStartedAt), which tells the scheduler to place its queued ones again.
    static let registrationVersion = "2"

    /// What this node registers in `fog:node:{id}`, started at `startedAt` (seconds since 1970).
    public func registration(startedAt: Double) -> FogNodeInfo {
        FogNodeInfo(
            id: id.rawValue, capacity: capacity, zone: zone, labels: labels, latencyMS: latencyMS, power: power,
            speed: speed, version: Self.registrationVersion, startedAt: startedAt)
    }

    /// Refuses settings that the schedulers would refuse to read back from Redis (a latency of
    /// `inf`, a label of 300 bytes, a battery of 150 %), naming the variable: a node that starts
    /// is one that can be placed on.
    func checkRegistration() throws(Settings.Invalid) {
        let info = registration(startedAt: 0)
        do {
            _ = try FogNodeInfo(id: id.rawValue, hashFields: info.hashFields)
        } catch {
            let name = error.field.flatMap { Self.variables[$0] } ?? "FOG_NODE_*"
            throw Settings.Invalid(name: name, value: error.field.flatMap { info.hashFields[$0] } ?? "", expected: error.reason)
        }
    }
}

/// What this host offers: CPUs, memory and disk, narrowed by the limits of the cgroup it runs
/// in (v2 `cpu.max` and `memory.max`, or v1 `cpu.cfs_quota_us` and `memory.limit_in_bytes`),
/// which is how Swarm's `deploy.resources.limits` reach it.
enum HostResources {
    static func detect() -> Resources {
        func read(_ path: String) -> String? {
            (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var cpu = ProcessInfo.processInfo.activeProcessorCount * 1000
        // Kernel files, but read as any outside value: a conversion never traps.
        func millicores(_ quota: Double, _ period: Double) -> Int? {
            let value = quota / period * 1000
            return value.isFinite && value >= 1 && value < 1e12 ? Int(value) : nil
        }
        if let parts = read("/sys/fs/cgroup/cpu.max")?.split(separator: " "), parts.count == 2,
            let quota = Double(parts[0]), let period = Double(parts[1]), period > 0, let limit = millicores(quota, period)
        {
            cpu = min(cpu, limit)
        } else if let quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").flatMap(Double.init), quota > 0,
            let period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us").flatMap(Double.init), period > 0,
            let limit = millicores(quota, period)
        {
            cpu = min(cpu, limit)
        }
        var memory = Int(min(ProcessInfo.processInfo.physicalMemory / 1_048_576, 100_000_000))
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let limit = read(path).flatMap(Int.init), limit > 0 { memory = min(memory, limit / 1_048_576) }
        }
        var storage = 0
        var stats = statvfs()
        if statvfs("/var/tmp", &stats) == 0 {
            let (bytes, overflow) = UInt64(stats.f_bavail).multipliedReportingOverflow(by: UInt64(stats.f_frsize))
            storage = overflow ? 1_000_000_000 : Int(min(bytes / 1_048_576, 1_000_000_000))
        }
        return Resources(cpuMillicores: min(max(1, cpu), 10_000_000), memoryMB: max(1, memory), storageMB: storage)
    }
}
