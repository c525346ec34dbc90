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

    /// Starts `argv` (through `ProcessSpawn`) with stdin from /dev/null and its output to files
    /// (stderr to stdout's file when `stderr` is nil).
    private static func spawn(_ argv: [String], environment: [String: String], stdout: String, stderr: String?, append: Bool) throws
        -> pid_t
    {
        guard !(argv.first ?? "").isEmpty else { throw Failure(argv: argv, reason: "empty command") }
        let mode = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
        do {
            return try ProcessSpawn.start(argv, environment: environment.map { "\($0.key)=\($0.value)" }) { actions in
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
                posix_spawn_file_actions_addopen(&actions, 1, stdout, mode, 0o600)
                if let stderr {
                    posix_spawn_file_actions_addopen(&actions, 2, stderr, mode, 0o600)
                } else {
                    posix_spawn_file_actions_adddup2(&actions, 1, 2)
                }
            }
        } catch let failure as ProcessSpawn.Failure {
            throw Failure(argv: argv, reason: "cannot start: \(String(cString: strerror(failure.code)))")
        }
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
