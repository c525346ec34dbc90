internal import CSandbox
import ClientSupport
import FogCore
import Foundation
import Spawn
import Synchronization

/// How an attempt is confined: where its control groups go (created and removed on the
/// attempt's own thread, never on the cooperative pool), the task user, and the memory limit
/// that RSS polling enforces when there are no control groups.
struct AttemptLimits: Sendable {
    var cgroups: CgroupLayout
    /// The attempt's name in the control-group tree.
    var name: String
    var user: TaskIdentity?
    var memoryBytes: Int
    var cpuMillicores: Int
    var maxProcesses: Int
}

/// One attempt's program, started with `posix_spawn` (Swift must not fork) through the exec
/// shim (which joins the attempt's control groups and drops to the task user), in a process
/// group of its own, in a directory only it can enter. Every descriptor it gets is the node's
/// own, made before it starts: stdin and its environment in memory files, stdout and stderr
/// into pipes that the node reads as they fill, keeping the last bytes, so that no path the
/// task could replace is ever opened by root, and no FIFO, device or endless writer can block
/// the node or fill its memory. A timeout or a cancel ends the whole group: SIGTERM, then
/// SIGKILL two seconds later. Going over the memory limit ends it as `resource_exceeded`.
final class AttemptProcess: Sendable {
    struct Result: Sendable {
        var outcome: AttemptOutcome
        var exitCode: Int?
        var cpuSeconds: Double
        var peakMemoryMB: Double
        var stdoutTail: String
        var stderrTail: String
        var outputLossy = false
        var reason: String?

        static func failure(_ outcome: AttemptOutcome, _ reason: String) -> Result {
            Result(outcome: outcome, exitCode: nil, cpuSeconds: 0, peakMemoryMB: 0, stdoutTail: "", stderrTail: "", reason: reason)
        }
    }

    /// `fence` kills at once, without the grace of the others: the node may be declared lost
    /// any moment, and its attempt must not overlap the one placed elsewhere.
    enum StopReason: Sendable { case timeout, cancel, interrupt, fence, memory }

    struct SpawnFailure: Error, CustomStringConvertible {
        let description: String
    }

    private let stopRequest = Mutex<StopReason?>(nil)
    private let worker: BlockingWorker

    init(name: String) {
        worker = BlockingWorker(name: name)
    }

    /// Asks a running attempt to stop; the result says why it ended.
    func stop(_ reason: StopReason) { stopRequest.withLock { if $0 == nil { $0 = reason } } }

    func run(
        argv: [String], environment: [String: String], stdin: [UInt8], directory: String, timeout: Duration, tailBytes: Int,
        limits: AttemptLimits
    ) async -> Result {
        defer { worker.shutdown() }
        do {
            return try await worker.run { [self] in
                let cgroup = AttemptCgroup(
                    layout: limits.cgroups, attempt: limits.name,
                    limits: Resources(cpuMillicores: limits.cpuMillicores, memoryMB: limits.memoryBytes / 1_048_576),
                    maxProcesses: limits.maxProcesses)
                defer {
                    cgroup?.remove()
                    if let user = limits.user, user.exclusive { TaskUsers.killAll(uid: user.uid) }
                    AttemptDirectory.remove(directory)
                }
                return try runBlocking(
                    argv: argv, environment: environment, stdin: stdin, directory: directory, timeout: timeout,
                    tailBytes: tailBytes, limits: limits, cgroup: cgroup)
            }
        } catch {
            return .failure(.failed, "\(error)")
        }
    }

    private func runBlocking(
        argv: [String], environment: [String: String], stdin: [UInt8], directory: String,
        timeout: Duration, tailBytes: Int, limits: AttemptLimits, cgroup: AttemptCgroup?
    ) throws -> Result {
        try AttemptDirectory.create(directory, for: limits.user)
        var plan = ExecShim.Plan()
        plan.cgroupDirectories = cgroup?.directories ?? []
        plan.maxProcesses = limits.maxProcesses
        if cgroup == nil {
            // No CPU quota without a control group: at least bound the CPU time the attempt may use.
            plan.cpuSeconds = Int((timeout.seconds * Double(max(1, (limits.cpuMillicores + 999) / 1000))).rounded(.up)) + 1
        }
        plan.uid = limits.user?.uid
        plan.gid = limits.user?.gid
        plan.environmentFromDescriptor = true
        plan.argv = argv
        let spawned = [Builtins.executablePath] + plan.arguments

        let stdinFile = try MemoryFile(name: "stdin", contents: stdin)
        let environmentFile = try MemoryFile(name: "environment", contents: ExecShim.encodeEnvironment(environment))
        let output = try OutputPipe(keeping: tailBytes)
        let errors = try OutputPipe(keeping: tailBytes)
        let started = Swift.Result {
            try ProcessSpawn.start(spawned, environment: ExecShim.fixedEnvironment) { actions in
                // The sources are close-on-exec; their copies at 0-3 are not. Everything above 3
                // is closed, whatever this process had open (its Redis and broker sockets among them).
                posix_spawn_file_actions_adddup2(&actions, stdinFile.descriptor, 0)
                posix_spawn_file_actions_adddup2(&actions, output.writeEnd, 1)
                posix_spawn_file_actions_adddup2(&actions, errors.writeEnd, 2)
                posix_spawn_file_actions_adddup2(&actions, environmentFile.descriptor, ExecShim.environmentDescriptor)
                posix_spawn_file_actions_addclosefrom_np(&actions, ExecShim.environmentDescriptor + 1)
                guard posix_spawn_file_actions_addchdir_np(&actions, directory) == 0 else {
                    throw SpawnFailure(description: "cannot chdir to \(directory)")
                }
            }
        }
        // The program holds its own copies now; the node keeps only the read ends.
        output.closeWriteEnd()
        errors.closeWriteEnd()
        stdinFile.close()
        environmentFile.close()
        let pid: pid_t
        switch started {
        case .success(let spawnedPID): pid = spawnedPID
        case .failure(let failure as ProcessSpawn.Failure): return .failure(.rejected, failure.description)
        case .failure(let error): throw error
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
                if stoppedFor == .fence {
                    kill(-pid, SIGKILL)
                } else if stoppedFor != nil {
                    kill(-pid, SIGTERM)
                    killAt = now + .seconds(2)
                }
            } else if let at = killAt, now >= at {
                kill(-pid, SIGKILL)
                killAt = nil
            }
            // Reads what the program wrote, or waits up to 10 ms for it.
            OutputPipe.poll([output, errors], milliseconds: 10)
        }
        // Whatever the program left running in its group goes with it; then what is left in
        // the pipes is read, without waiting for a writer that escaped the group.
        kill(-pid, SIGKILL)
        output.drain()
        errors.drain()
        output.close()
        errors.close()

        let exited = (status & 0x7f) == 0
        let code = exited ? Int((status >> 8) & 0xff) : 128 + Int(status & 0x7f)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        let (outText, outLossy) = OutputTail.text(output.tail.bytes, truncated: output.tail.truncated)
        let (errText, errLossy) = OutputTail.text(errors.tail.bytes, truncated: errors.tail.truncated)
        var result = Result(
            outcome: code == 0 ? .succeeded : .failed, exitCode: code, cpuSeconds: cpu,
            peakMemoryMB: cgroup?.peakMemoryMB ?? Double(usage.ru_maxrss) / 1024,
            stdoutTail: outText, stderrTail: errText, outputLossy: outLossy || errLossy,
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
        case .fence?:
            result.outcome = .interrupted
            result.reason = "killed when the node fenced itself: it could not renew its heartbeat"
        case .memory?:
            result.outcome = .resourceExceeded
            result.reason =
                cgroup != nil
                ? "killed by the kernel's OOM killer at its memory limit of \(limits.memoryBytes / 1_048_576) MB"
                : "its resident memory went over its limit of \(limits.memoryBytes / 1_048_576) MB"
        case nil:
            break
        }
        return result
    }

    /// The resident set of a process, from /proc/<pid>/statm.
    static func residentBytes(of pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]), pages >= 0 else { return 0 }
        return pages.multipliedReportingOverflow(by: Int(sysconf(Int32(_SC_PAGESIZE)))).partialValue
    }
}

/// The last bytes a program wrote to one stream, however much it wrote.
struct TailBuffer {
    let limit: Int
    private(set) var bytes: [UInt8] = []
    /// More was written than `limit`: the start is cut.
    private(set) var truncated = false

    init(limit: Int) { self.limit = max(0, limit) }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        if chunk.count >= limit {
            truncated = truncated || chunk.count > limit || !bytes.isEmpty
            bytes = Array(chunk.suffix(limit))
            return
        }
        bytes += chunk
        if bytes.count > limit {
            bytes.removeFirst(bytes.count - limit)
            truncated = true
        }
    }
}

/// A pipe whose write end goes to the program and whose read end the node reads, without ever
/// blocking (the read end is non-blocking and close-on-exec), keeping the last bytes.
final class OutputPipe {
    private(set) var readEnd: Int32
    private(set) var writeEnd: Int32
    private(set) var atEnd = false
    private(set) var tail: TailBuffer
    private static let chunkSize = 65_536

    init(keeping limit: Int) throws {
        var ends: [Int32] = [-1, -1]
        guard pipe2(&ends, O_CLOEXEC) == 0 else {
            throw AttemptProcess.SpawnFailure(description: "pipe: \(String(cString: strerror(errno)))")
        }
        readEnd = ends[0]
        writeEnd = ends[1]
        tail = TailBuffer(limit: limit)
        _ = fog_set_nonblocking(readEnd)
    }

    deinit {
        closeWriteEnd()
        close()
    }

    func closeWriteEnd() {
        if writeEnd >= 0 { Glibc.close(writeEnd) }
        writeEnd = -1
    }

    func close() {
        if readEnd >= 0 { Glibc.close(readEnd) }
        readEnd = -1
    }

    /// Reads what is there now, at most `budget` bytes; sets `atEnd` once every writer closed.
    func readAvailable(budget: Int = 1 << 20) {
        var chunk = [UInt8](repeating: 0, count: Self.chunkSize)
        var left = budget
        while readEnd >= 0, !atEnd, left > 0 {
            let count = read(readEnd, &chunk, min(chunk.count, left))
            if count > 0 {
                tail.append(chunk[0..<count])
                left -= count
            } else if count == 0 {
                atEnd = true
            } else if errno != EINTR {
                return  // EAGAIN: nothing more now
            }
        }
    }

    /// What is left once the program is gone: a bounded read, never a wait.
    func drain() { readAvailable(budget: 16 << 20) }

    /// Waits up to `milliseconds` for output on any of `pipes` and reads it.
    static func poll(_ pipes: [OutputPipe], milliseconds: Int32) {
        let open = pipes.filter { !$0.atEnd && $0.readEnd >= 0 }
        var descriptors = open.map { pollfd(fd: $0.readEnd, events: Int16(POLLIN), revents: 0) }
        if descriptors.isEmpty {
            usleep(UInt32(milliseconds) * 1000)
            return
        }
        guard Glibc.poll(&descriptors, nfds_t(descriptors.count), milliseconds) > 0 else { return }
        for pipe in open { pipe.readAvailable() }
    }
}

/// An anonymous file in memory (memfd) holding bytes for the program: its stdin, its
/// environment. Nothing on disk, no path anyone could replace.
final class MemoryFile {
    private(set) var descriptor: Int32

    init(name: String, contents: [UInt8]) throws {
        descriptor = fog_memfd_create("fog-\(name)")
        guard descriptor >= 0 else { throw AttemptProcess.SpawnFailure(description: "memfd_create: \(String(cString: strerror(errno)))") }
        var offset = 0
        while offset < contents.count {
            let written = contents[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw AttemptProcess.SpawnFailure(description: "write to memfd: \(String(cString: strerror(errno)))") }
            offset += written
        }
        lseek(descriptor, 0, SEEK_SET)
    }

    deinit { close() }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }
}

/// An attempt's working directory: `FOG_WORK_DIR/<attempt>`, mode 0700, owned by the task user,
/// inside a root-owned parent that others may cross but not list or write, so only the attempt
/// can enter it and nobody can plant anything there before it starts. It is removed afterwards
/// by `rm -rf --one-file-system`, which never follows a link the task left.
enum AttemptDirectory {
    static func prepareRoot(_ root: String) throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if geteuid() == 0 { chown(root, 0, 0) }
        chmod(root, 0o711)
    }

    static func create(_ directory: String, for user: TaskIdentity?) throws {
        if FileManager.default.fileExists(atPath: directory) { remove(directory) }
        guard mkdir(directory, 0o700) == 0 else {
            throw AttemptProcess.SpawnFailure(description: "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        if let user {
            guard chown(directory, user.uid, user.gid) == 0 else {
                throw AttemptProcess.SpawnFailure(
                    description: "cannot give \(directory) to uid \(user.uid): \(String(cString: strerror(errno)))")
            }
        }
    }

    static func remove(_ directory: String) {
        _ = try? CommandRunner.runBlocking(["/bin/rm", "-rf", "--one-file-system", "--", directory], timeout: .seconds(120))
    }
}
