import AMQPClient
import ArgumentParser
import FogCore
import FogNode
import Foundation
import Logging
import RedisClient
import ServiceCommand
import ServiceLifecycle

/// `fog-node`: the executor that runs tasks on an edge host.
@main
struct FogNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fog-node",
        abstract: "FogScheduler's fog node: runs the tasks placed on this host within their limits.",
        subcommands: [Run.self, Builtin.self, ExecShimCommand.self, Check.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register, heartbeat, and run the tasks placed on this node until SIGTERM.",
            discussion: "Settings come from FOG_* variables (docs/CONFIGURATION.md); the flags override them.")

        @Option(help: "This node's id (FOG_NODE_ID).") var id: String?
        @Option(help: "Its zone (FOG_NODE_ZONE).") var zone: String?

        func run() async throws {
            var environment = try ServiceSettings.environment()
            if let id { environment["FOG_NODE_ID"] = id }
            if let zone { environment["FOG_NODE_ZONE"] = zone }
            let configuration: FogNodeConfiguration
            do { configuration = try FogNodeConfiguration(environment: environment) } catch {
                FileHandle.standardError.write(Data("fog-node: \(error)\n".utf8))
                throw ExitCode(2)
            }
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            var logger = Logger(label: "fog-node")
            logger.logLevel = environment["FOG_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: FogNodeService(configuration: configuration, logger: logger))],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    struct Builtin: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a built-in task kind in this process (the fog node starts it as a child).", shouldDisplay: false)

        @Argument var kind: String
        @Option var seconds: Double = 0
        @Option var millicores: Int = 1000
        @Option var mb: Int = 1
        @Option var exitCode: Int32 = 0

        func run() throws {
            guard let builtin = BuiltinKind(rawValue: kind) else { throw ValidationError("unknown kind \(kind)") }
            // The flags are outside input too: the same limits as a task's arguments.
            let arguments = BuiltinArguments(seconds: seconds, millicores: millicores, mb: mb, exitCode: Int(exitCode))
            let spec = TaskSpec(name: kind, kind: builtin, args: arguments)
            if let problem = spec.problems.sorted(by: { $0.key < $1.key }).first {
                throw ValidationError("--\(problem.key.dropFirst("args.".count).replacingOccurrences(of: "_", with: "-")) \(problem.value)")
            }
            let status = Builtins.run(builtin, seconds: seconds, millicores: millicores, mb: mb, exitCode: exitCode)
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct ExecShimCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "exec-shim",
            abstract: "Join an attempt's control groups, drop to the task user and exec the program (the fog node runs it).",
            shouldDisplay: false)

        @Option(name: .customLong("join")) var joins: [String] = []
        @Option var maxProcesses: Int?
        @Option var cpuSeconds: Int?
        @Option var uid: UInt32?
        @Option var gid: UInt32?
        @Flag var environmentFromFd = false
        @Argument(parsing: .postTerminator) var argv: [String] = []

        func validate() throws {
            if let maxProcesses, !ExecShim.Limits.maxProcesses.contains(maxProcesses) {
                throw ValidationError("--max-processes must be in \(ExecShim.Limits.maxProcesses)")
            }
            if let cpuSeconds, !ExecShim.Limits.cpuSeconds.contains(cpuSeconds) {
                throw ValidationError("--cpu-seconds must be in \(ExecShim.Limits.cpuSeconds)")
            }
            if (uid == nil) != (gid == nil) { throw ValidationError("--uid and --gid go together") }
            if uid == 0 { throw ValidationError("--uid 0: a task never runs as root") }
        }

        func run() throws {
            var plan = ExecShim.Plan()
            plan.environmentFromDescriptor = environmentFromFd
            plan.cgroupDirectories = joins
            plan.maxProcesses = maxProcesses
            plan.cpuSeconds = cpuSeconds
            plan.uid = uid
            plan.gid = gid
            plan.argv = argv
            ExecShim.exec(plan)
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that RabbitMQ and Redis answer (FOG_BROKER_URL, FOG_REDIS_URL). A fog node never needs the database.")

        func run() async throws {
            let status = await runConnectivityCheck([
                (.broker, { try await AMQPConnection.probe(urls: $0.brokerURLs ?? "") }),
                (.redis, { try await RedisConnection.probe(url: $0.redisURL ?? "") }),
            ])
            if status != 0 { throw ExitCode(status) }
        }
    }
}
