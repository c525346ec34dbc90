import Foundation

/// What runs between `posix_spawn` and the task's program (`fog-node exec-shim ... -- argv`):
/// Swift must not fork, so the fog node spawns itself, and this joins the attempt's control
/// groups, sets rlimits, drops to the task user and `execve`s the program in the same process
/// (the node keeps its pid and process group). Failing any step, it exits 126 with the reason
/// on stderr, and the program never runs.
public enum ExecShim {
    public struct Plan: Sendable {
        public var cgroupDirectories: [String] = []
        public var maxProcesses: Int?
        /// CPU seconds (RLIMIT_CPU), when no control group caps the CPU.
        public var cpuSeconds: Int?
        public var uid: uid_t?
        public var gid: gid_t?
        public var argv: [String] = []

        public init() {}

        /// The arguments of `fog-node exec-shim` that carry this plan.
        var arguments: [String] {
            var arguments = ["exec-shim"]
            for directory in cgroupDirectories { arguments += ["--join", directory] }
            if let maxProcesses { arguments += ["--max-processes", String(maxProcesses)] }
            if let cpuSeconds { arguments += ["--cpu-seconds", String(cpuSeconds)] }
            if let uid, let gid { arguments += ["--uid", String(uid), "--gid", String(gid)] }
            return arguments + ["--"] + argv
        }
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
        if let maxProcesses = plan.maxProcesses, plan.uid != nil {
            // Per user, so only meaningful for the unprivileged task user.
            var limit = rlimit(rlim_cur: rlim_t(maxProcesses), rlim_max: rlim_t(maxProcesses))
            setrlimit(__rlimit_resource_t(6), &limit)  // RLIMIT_NPROC, which Glibc does not export to Swift
        }
        if let cpuSeconds = plan.cpuSeconds {
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
        }
        guard let program = plan.argv.first else { fail("no program") }
        let cArguments = plan.argv.map { strdup($0) } + [nil]
        if ownBinary >= 0 {
            let cEnvironment = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            fexecve(ownBinary, cArguments, cEnvironment)
        } else {
            execv(program, cArguments)
        }
        fail("cannot run \(program)")
    }

    /// The task user's ids, when this process runs as root; nil otherwise (tasks then run as
    /// the node's own user).
    static func taskUser(named name: String) -> (uid: uid_t, gid: gid_t)? {
        guard geteuid() == 0, let entry = getpwnam(name) else { return nil }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }
}
