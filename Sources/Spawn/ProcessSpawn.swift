import Foundation

/// The project's one `posix_spawn` (Swift must not `fork`): the fog node's attempts,
/// `CommandRunner`'s programs (rabbitmqctl for clusterctl, the binaries for the tests) and the
/// detached daemons of the tests all start here.
///
/// Every child gets a process group of its own, so that a stop or a timeout reaches whatever
/// it started (`kill(-pid, ...)`), and no blocked signal: without that it inherits the spawning
/// thread's mask, and Swift's worker threads block most signals, so that a daemon started that
/// way (epmd, a RabbitMQ node) never sees SIGTERM and outlives the `kill` meant to stop it.
public enum ProcessSpawn {
    /// `posix_spawn` refused (the errno it returned).
    public struct Failure: Error, CustomStringConvertible {
        public let program: String
        public let code: Int32
        public var description: String { "cannot start \(program): \(String(cString: strerror(code)))" }
    }

    /// Starts `argv` with exactly `environment` ("KEY=VALUE" strings, nothing inherited);
    /// `argv[0]` is a path, or a name looked up on PATH when it holds no "/". `fileActions`
    /// says what the child's descriptors are (and may throw to start nothing). Returns its PID.
    public static func start(
        _ argv: [String], environment: [String],
        fileActions configure: (inout posix_spawn_file_actions_t) throws -> Void = { _ in }
    ) throws -> pid_t {
        guard let program = argv.first, !program.isEmpty else { throw Failure(program: "an empty command", code: ENOENT) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        try configure(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            for argument in cArguments { free(argument) }
            for variable in cEnvironment { free(variable) }
        }
        var pid: pid_t = 0
        let status =
            program.contains("/")
            ? posix_spawn(&pid, program, &actions, &attributes, cArguments, cEnvironment)
            : posix_spawnp(&pid, program, &actions, &attributes, cArguments, cEnvironment)
        guard status == 0 else { throw Failure(program: program, code: status) }
        return pid
    }
}
