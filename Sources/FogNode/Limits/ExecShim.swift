internal import CSandbox
import FogCore
import Foundation

/// What runs between `posix_spawn` and the task's program (`fog-node exec-shim ... -- argv`):
/// Swift must not fork, so the fog node spawns itself, and this joins the attempt's control
/// groups, sets rlimits, drops to the task user for good and `execve`s the program in the same
/// process (the node keeps its pid and process group). Failing any step, it exits 126 with the
/// reason on stderr, and the program never runs.
///
/// Nothing the task controls reaches this process while it is privileged: it is spawned with a
/// fixed environment (so no dynamic-loader variable can act on it), its descriptors are the
/// node's own (stdin and the task's environment in memory files, output into pipes, nothing
/// above 3), and it reads the task's environment from descriptor 3 only after the drop, to hand
/// it to the final `execve`.
public enum ExecShim {
    /// The descriptor the task's environment arrives on: `NAME=value` entries, each ended by NUL.
    static let environmentDescriptor: Int32 = 3
    /// The most environment bytes read (the API allows 64 KiB).
    static let maxEnvironmentBytes = 1 << 20
    /// What the shim itself runs with: nothing of the task's, nothing of the node's.
    static let fixedEnvironment = ["PATH=/usr/bin:/bin", "LC_ALL=C"]

    public struct Plan: Sendable {
        public var cgroupDirectories: [String] = []
        public var maxProcesses: Int?
        /// CPU seconds (RLIMIT_CPU), when no control group caps the CPU.
        public var cpuSeconds: Int?
        public var uid: UInt32?
        public var gid: UInt32?
        /// Read the task's environment from descriptor 3.
        public var environmentFromDescriptor = false
        public var argv: [String] = []

        public init() {}

        /// The arguments of `fog-node exec-shim` that carry this plan.
        var arguments: [String] {
            var arguments = ["exec-shim"]
            for directory in cgroupDirectories { arguments += ["--join", directory] }
            if let maxProcesses { arguments += ["--max-processes", String(maxProcesses)] }
            if let cpuSeconds { arguments += ["--cpu-seconds", String(cpuSeconds)] }
            if let uid, let gid { arguments += ["--uid", String(uid), "--gid", String(gid)] }
            if environmentFromDescriptor { arguments.append("--environment-from-fd") }
            return arguments + ["--"] + argv
        }
    }

    /// The ranges the shim's flags must fall in (they are outside input like any other).
    public enum Limits {
        public static let maxProcesses = 1...1_000_000
        public static let cpuSeconds = 1...1_000_000_000
    }

    public static func exec(_ plan: Plan) -> Never {
        func fail(_ what: String) -> Never {
            FileHandle.standardError.write(Data("fog-node exec-shim: \(what): \(String(cString: strerror(errno)))\n".utf8))
            exit(126)
        }
        let pid = String(getpid())
        for directory in plan.cgroupDirectories {
            guard (try? pid.write(toFile: "\(directory)/cgroup.procs", atomically: false, encoding: .utf8)) != nil else {
                fail("cannot join \(directory)")
            }
        }
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
        if let maxProcesses = plan.maxProcesses, Limits.maxProcesses.contains(maxProcesses), plan.uid != nil {
            // Per user, so only meaningful for the unprivileged task user.
            var limit = rlimit(rlim_cur: rlim_t(maxProcesses), rlim_max: rlim_t(maxProcesses))
            setrlimit(__rlimit_resource_t(6), &limit)  // RLIMIT_NPROC, which Glibc does not export to Swift
        }
        if let cpuSeconds = plan.cpuSeconds, Limits.cpuSeconds.contains(cpuSeconds) {
            var limit = rlimit(rlim_cur: rlim_t(cpuSeconds), rlim_max: rlim_t(cpuSeconds + 5))
            setrlimit(__rlimit_resource_t(RLIMIT_CPU.rawValue), &limit)
        }
        // The node's own binary (a built-in kind) may sit where the task user cannot reach it
        // (a checkout under a private directory): open it while still root, exec it by descriptor.
        var ownBinary: Int32 = -1
        if plan.argv.first == Builtins.executablePath {
            ownBinary = open(Builtins.executablePath, O_RDONLY | O_CLOEXEC)
            guard ownBinary >= 0 else { fail("cannot open \(Builtins.executablePath)") }
        }
        if let uid = plan.uid, let gid = plan.gid {
            guard setgroups(0, nil) == 0 else { fail("setgroups") }
            guard setgid(gid) == 0 else { fail("setgid \(gid)") }
            guard setuid(uid) == 0 else { fail("setuid \(uid)") }
            // For good: neither the real, effective nor saved ids may lead back.
            guard getuid() == uid, geteuid() == uid, getgid() == gid, getegid() == gid, uid == 0 || setuid(0) != 0 else {
                fail("the task user's ids did not hold")
            }
        }
        guard fog_set_no_new_privs() == 0 else { fail("PR_SET_NO_NEW_PRIVS") }
        umask(0o077)
        let environment = plan.environmentFromDescriptor ? readEnvironment() : []
        // Nothing above stderr reaches the program (the own-binary descriptor goes at exec).
        guard fog_cloexec_from(3) == 0 else { fail("close_range") }
        guard let program = plan.argv.first else { fail("no program") }
        let cArguments = plan.argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        if ownBinary >= 0 {
            fexecve(ownBinary, cArguments, cEnvironment)
        } else {
            execve(program, cArguments, cEnvironment)
        }
        fail("cannot run \(program)")
    }

    /// The task's environment from descriptor 3, then closed: at most `maxEnvironmentBytes`,
    /// without any variable the dynamic loader reads (the node refuses those already).
    static func readEnvironment() -> [String] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while bytes.count < maxEnvironmentBytes {
            let count = read(environmentDescriptor, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        close(environmentDescriptor)
        return bytes.split(separator: 0).compactMap { entry in
            let text = String(decoding: entry, as: UTF8.self)
            guard let equals = text.firstIndex(of: "="), !TaskLimits.isLoaderVariable(String(text[..<equals])) else { return nil }
            return text
        }
    }

    /// The task's environment as descriptor 3 carries it.
    static func encodeEnvironment(_ environment: [String: String]) -> [UInt8] {
        environment.sorted { $0.key < $1.key }.flatMap { Array("\($0.key)=\($0.value)".utf8) + [0] }
    }
}
