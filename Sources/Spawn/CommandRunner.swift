import ClientSupport
import Foundation

/// Runs a program by argv (never a shell) with a timeout, and captures its output.
///
/// Uses `posix_spawn` (Swift must not `fork`), in a process group of its own so that a timeout
/// kills the program and whatever it started. The blocking wait runs on a worker thread.
public struct CommandRunner: Sendable {
    /// What a finished program left behind.
    public struct Output: Sendable, Equatable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var succeeded: Bool { status == 0 }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let argv: [String]
        public let reason: String
        public var description: String { "\(argv.joined(separator: " ")): \(reason)" }
    }

    private let worker: BlockingWorker
    /// Extra environment for every program, over this process's own.
    public var environment: [String: String]

    public init(name: String = "commands", environment: [String: String] = [:]) {
        self.worker = BlockingWorker(name: name)
        self.environment = environment
    }

    /// Runs `argv` and waits at most `timeout`; a program still running then is killed
    /// (SIGKILL to its process group) and the call throws.
    public func run(_ argv: [String], timeout: Duration = .seconds(60)) async throws -> Output {
        let environment = ProcessInfo.processInfo.environment.merging(self.environment) { $1 }
        return try await worker.run { try Self.spawnAndWait(argv, environment: environment, timeout: timeout) }
    }

    /// Runs `argv` and throws unless it exits 0.
    @discardableResult
    public func check(_ argv: [String], timeout: Duration = .seconds(60)) async throws -> Output {
        let output = try await run(argv, timeout: timeout)
        guard output.succeeded else {
            let detail = (output.stderr.isEmpty ? output.stdout : output.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(argv: argv, reason: "exited \(output.status): \(detail.suffix(600))")
        }
        return output
    }

    /// The same, blocking the calling thread: for scripts and tests, never for a service's tasks.
    public static func runBlocking(_ argv: [String], environment: [String: String] = [:], timeout: Duration = .seconds(300)) throws
        -> Output
    {
        try spawnAndWait(argv, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, timeout: timeout)
    }

    /// Starts `argv` in a process group of its own and returns at once with its PID; its
    /// output goes to `logFile`. The caller stops it by that PID and reaps it with `waitpid`.
    public static func spawnDetached(_ argv: [String], environment: [String: String] = [:], logFile: String) throws -> pid_t {
        try spawn(
            argv, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            stdout: logFile, stderr: nil, append: true)
    }

    /// posix_spawn in a new process group, stdin from /dev/null, output to files (stderr to
    /// stdout's file when `stderr` is nil).
    private static func spawn(_ argv: [String], environment: [String: String], stdout: String, stderr: String?, append: Bool) throws
        -> pid_t
    {
        guard let program = argv.first else { throw Failure(argv: argv, reason: "empty command") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let mode = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, mode, 0o600)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, mode, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        Self.newProcessGroupWithDefaultSignals(&attributes)

        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for argument in cArguments { free(argument) }
            for variable in cEnvironment { free(variable) }
        }
        var pid: pid_t = 0
        let spawned =
            program.contains("/")
            ? posix_spawn(&pid, program, &actions, &attributes, cArguments, cEnvironment)
            : posix_spawnp(&pid, program, &actions, &attributes, cArguments, cEnvironment)
        guard spawned == 0 else { throw Failure(argv: argv, reason: "cannot start: \(String(cString: strerror(spawned)))") }
        return pid
    }

    /// Spawn attributes for a child in a process group of its own, with no signal blocked and
    /// every signal at its default action. Without this the child inherits the spawning
    /// thread's mask, and Swift's worker threads block most signals: a daemon started that way
    /// (epmd, a RabbitMQ node) never sees SIGTERM and outlives the `kill` meant to stop it.
    public static func newProcessGroupWithDefaultSignals(_ attributes: inout posix_spawnattr_t) {
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
    }

    static func spawnAndWait(_ argv: [String], environment: [String: String], timeout: Duration) throws -> Output {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fog-cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Files, not pipes: a daemon the program starts must not keep our read end waiting.
        let outPath = directory.appendingPathComponent("stdout").path
        let errPath = directory.appendingPathComponent("stderr").path
        let pid = try spawn(argv, environment: environment, stdout: outPath, stderr: errPath, append: false)

        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while true {
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            if waited == -1 && errno != EINTR { throw Failure(argv: argv, reason: "waitpid failed: \(String(cString: strerror(errno)))") }
            if ContinuousClock.now >= deadline {
                kill(-pid, SIGKILL)
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                throw Failure(argv: argv, reason: "timed out after \(timeout)")
            }
            usleep(20_000)
        }
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0
        return Output(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), stdout: stdout, stderr: stderr)
    }
}
