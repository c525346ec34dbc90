import Foundation
import Spawn
import Testing

/// The programs CommandRunner starts (rabbitmqctl for clusterctl; services.sh, epmd and
/// RabbitMQ nodes for the tests) must get signals like any program started from a shell.
@Suite("CommandRunner")
struct CommandRunnerTests {
    /// The standard signals (1-31) in a signal-set line of `/proc/self/status`, e.g. "SigBlk",
    /// of the program that reads it. glibc keeps its own two (32 and 33) ignored in every child.
    private func standardSignals(_ name: String, of output: CommandRunner.Output) -> UInt64? {
        output.stdout.split(separator: "\n").first { $0.hasPrefix(name + ":") }
            .flatMap { UInt64($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) }
            .map { $0 & 0x7fff_ffff }
    }

    @Test("a program run from a Swift worker thread blocks and ignores no signal")
    func cleanSignalState() async throws {
        let output = try await CommandRunner().check(["/bin/cat", "/proc/self/status"])
        #expect(standardSignals("SigBlk", of: output) == 0)
        #expect(standardSignals("SigIgn", of: output) == 0)
    }

    @Test("a program that does not exist, or an empty argv, is refused by name and starts nothing")
    func aMissingProgramIsRefused() async throws {
        await #expect { try await CommandRunner().run(["/nonexistent/fog-program"]) } throws: { error in
            "\(error)".contains("/nonexistent/fog-program") && "\(error)".contains("cannot start")
        }
        await #expect { try await CommandRunner().run([]) } throws: { "\($0)".contains("empty command") }
        #expect(throws: ProcessSpawn.Failure.self) { try ProcessSpawn.start(["no-such-fog-program"], environment: ["PATH=/usr/bin:/bin"]) }
    }

    @Test("a detached program stops on SIGTERM")
    func detachedProgramStopsOnTerm() throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fog-runner-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let pid = try CommandRunner.spawnDetached(["/bin/sleep", "60"], logFile: log)
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // A blocked SIGTERM would leave sleep to run its minute and exit 0.
        #expect(status & 0x7f == SIGTERM)
    }
}
