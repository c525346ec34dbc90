import ClientSupport
import FogCore
import Foundation
import ServiceSupport
import Synchronization

/// How an attempt is confined: where its control groups go (created and removed on the
/// attempt's own thread, never on the cooperative pool), the task user, and the memory limit
/// that RSS polling enforces when there are no control groups.
struct AttemptLimits: Sendable {
    var cgroups: CgroupLayout
    /// The attempt's name in the control-group tree.
    var name: String
    var user: (uid: uid_t, gid: gid_t)?
    var memoryBytes: Int
    var cpuMillicores: Int
    var maxProcesses: Int
}

/// One attempt's program, started with `posix_spawn` (Swift must not fork) through the exec
/// shim (which joins the attempt's control groups and drops to the task user), in a process
/// group of its own, in its own working directory, with its stdin from a file and its output
/// to files. A timeout or a cancel ends the whole group: SIGTERM, then SIGKILL two seconds
/// later. Going over the memory limit ends it as `resource_exceeded`.
final class AttemptProcess: Sendable {
    struct Result: Sendable {
        var outcome: AttemptOutcome
        var exitCode: Int?
        var cpuSeconds: Double
        var peakMemoryMB: Double
        var stdoutTail: String
        var stderrTail: String
        var reason: String?
    }

    enum StopReason: Sendable { case timeout, cancel, interrupt, memory }

    private let stopRequest = Mutex<StopReason?>(nil)
    private let worker: BlockingWorker

    init(name: String) {
        worker = BlockingWorker(name: name)
    }

    /// Asks a running attempt to stop; the result says why it ended.
    func stop(_ reason: StopReason) { stopRequest.withLock { if $0 == nil { $0 = reason } } }

    func run(argv: [String], environment: [String: String], stdin: [UInt8], directory: String, timeout: Duration, tailBytes: Int,
             limits: AttemptLimits) async -> Result {
        defer { worker.shutdown() }
        do {
            return try await worker.run { [self] in
                let cgroup = AttemptCgroup(
                    layout: limits.cgroups, attempt: limits.name,
                    limits: Resources(cpuMillicores: limits.cpuMillicores, memoryMB: limits.memoryBytes / 1_048_576),
                    maxProcesses: limits.maxProcesses)
                defer {
                    cgroup?.remove()
                    try? FileManager.default.removeItem(atPath: directory)
                }
                return try runBlocking(argv: argv, environment: environment, stdin: stdin, directory: directory, timeout: timeout,
                                       tailBytes: tailBytes, limits: limits, cgroup: cgroup)
            }
        } catch {
            return Result(outcome: .failed, exitCode: nil, cpuSeconds: 0, peakMemoryMB: 0, stdoutTail: "", stderrTail: "",
                          reason: "\(error)")
        }
    }

    private func runBlocking(argv: [String], environment: [String: String], stdin: [UInt8], directory: String,
                             timeout: Duration, tailBytes: Int, limits: AttemptLimits, cgroup: AttemptCgroup?) throws -> Result {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let user = limits.user { chown(directory, user.uid, user.gid) }
        var plan = ExecShim.Plan()
        plan.cgroupDirectories = cgroup?.directories ?? []
        plan.maxProcesses = limits.maxProcesses
        if cgroup == nil {
            // No CPU quota without a control group: at least bound the CPU time the attempt may use.
            plan.cpuSeconds = Int((timeout.seconds * Double(max(1, (limits.cpuMillicores + 999) / 1000))).rounded(.up)) + 1
        }
        plan.uid = limits.user?.uid
        plan.gid = limits.user?.gid
        plan.argv = argv
        let spawned = [Builtins.executablePath] + plan.arguments
        let stdinPath = directory + "/.stdin", outPath = directory + "/.stdout", errPath = directory + "/.stderr"
        FileManager.default.createFile(atPath: stdinPath, contents: Data(stdin))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard Self.addChdir(&actions, directory) == 0 else { throw CocoaError(.fileReadUnknown) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        CommandRunner.newProcessGroupWithDefaultSignals(&attributes)

        let cArguments = spawned.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawnStatus = posix_spawn(&pid, spawned[0], &actions, &attributes, cArguments, cEnvironment)
        guard spawnStatus == 0 else {
            return Result(outcome: .rejected, exitCode: nil, cpuSeconds: 0, peakMemoryMB: 0, stdoutTail: "", stderrTail: "",
                          reason: "cannot start \(spawned[0]): \(String(cString: strerror(spawnStatus)))")
        }

        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        var usage = rusage()
        var stoppedFor: StopReason?
        var killAt: ContinuousClock.Instant?
        var nextRSSCheck = ContinuousClock.now
        while true {
            let waited = wait4(pid, &status, WNOHANG, &usage)
            if waited == pid { break }
            if waited == -1 && errno != EINTR { break }
            let now = ContinuousClock.now
            if stoppedFor == nil && cgroup == nil && now >= nextRSSCheck {
                // Without control groups, memory is enforced by polling the program's RSS.
                nextRSSCheck = now + .milliseconds(100)
                if Self.residentBytes(of: pid) > limits.memoryBytes {
                    stoppedFor = .memory
                    kill(-pid, SIGKILL)
                    continue
                }
            }
            if stoppedFor == nil {
                if now >= deadline { stoppedFor = .timeout } else if let request = stopRequest.withLock({ $0 }) { stoppedFor = request }
                if stoppedFor != nil {
                    kill(-pid, SIGTERM)
                    killAt = now + .seconds(2)
                }
            } else if let at = killAt, now >= at {
                kill(-pid, SIGKILL)
                killAt = nil
            }
            usleep(10_000)
        }
        // Whatever the program left running in its group goes with it.
        kill(-pid, SIGKILL)

        let exited = (status & 0x7f) == 0
        let code = exited ? Int((status >> 8) & 0xff) : 128 + Int(status & 0x7f)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        var result = Result(
            outcome: code == 0 ? .succeeded : .failed, exitCode: code, cpuSeconds: cpu,
            peakMemoryMB: cgroup?.peakMemoryMB ?? Double(usage.ru_maxrss) / 1024,
            stdoutTail: Self.tail(of: outPath, bytes: tailBytes), stderrTail: Self.tail(of: errPath, bytes: tailBytes),
            reason: code == 0 ? nil : (exited ? "exited \(code)" : "killed by signal \(status & 0x7f)"))
        if code == 126, result.stderrTail.hasPrefix("fog-node exec-shim:") {
            result.outcome = .rejected
            result.reason = result.stderrTail.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if stoppedFor == nil, cgroup?.oomKilled == true {
            stoppedFor = .memory
        }
        switch stoppedFor {
        case .timeout?:
            result.outcome = .timedOut
            result.reason = "ran longer than its timeout of \(timeout)"
        case .cancel?:
            result.outcome = .cancelled
            result.reason = "cancelled"
        case .interrupt?:
            result.outcome = .interrupted
            result.reason = "the node stopped it while shutting down"
        case .memory?:
            result.outcome = .resourceExceeded
            result.reason = cgroup != nil
                ? "killed by the kernel's OOM killer at its memory limit of \(limits.memoryBytes / 1_048_576) MB"
                : "its resident memory went over its limit of \(limits.memoryBytes / 1_048_576) MB"
        case nil:
            break
        }
        return result
    }

    /// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+), which Swift's Glibc module
    /// does not export: looked up once by name.
    private static let addChdir: @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32 = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else {
            fatalError("glibc 2.29 or later is required (posix_spawn_file_actions_addchdir_np)")
        }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)
    }()

    /// The resident set of a process, from /proc/<pid>/statm.
    static func residentBytes(of pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The last `bytes` of a file, as text.
    static func tail(of path: String, bytes: Int) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > UInt64(bytes) ? size - UInt64(bytes) : 0)
        let data = (try? handle.readToEnd()) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
