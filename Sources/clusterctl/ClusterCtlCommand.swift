import ArgumentParser
import ClusterCtl
import FogCore
import Foundation
import Logging
import RedisClient
import ServiceCommand

/// `clusterctl`: keeps the RabbitMQ cluster whole through Redis.
@main
struct ClusterCtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusterctl",
        abstract: "FogScheduler's RabbitMQ cluster helper: membership, heartbeats and master election in Redis.",
        subcommands: [Run.self, Status.self, Health.self, Join.self, Rejoin.self, Forget.self, Grow.self, Members.self, Check.self])
}

/// Options every subcommand shares: which node, which Redis, where the RabbitMQ tools are.
struct ClusterOptions: ParsableArguments {
    @Option(help: "The local RabbitMQ node (default: $FOG_RABBITMQ_NODE, else $RABBITMQ_NODENAME).")
    var node: String?
    @Option(help: "Redis URL (default: $FOG_REDIS_URL).")
    var redisURL: String?
    @Option(help: "Folder of rabbitmqctl and rabbitmq-queues (default: found on PATH).")
    var rabbitmqBin: String?
    @Option(help: "Seconds between heartbeats.")
    var heartbeatInterval: Int = 10
    @Option(help: "Seconds a heartbeat lives.")
    var heartbeatTTL: Int = 30
    @Option(help: "Seconds the master key lives without renewal.")
    var masterLease: Int = 10
    @Option(help: "Seconds between the master's checks for quorum queues short of a running member.")
    var queueReplicationInterval: Int = 30

    func validate() throws {
        for (flag, value) in [
            ("--heartbeat-interval", heartbeatInterval), ("--heartbeat-ttl", heartbeatTTL), ("--master-lease", masterLease),
            ("--queue-replication-interval", queueReplicationInterval),
        ] where !(1...86_400).contains(value) {
            throw ValidationError("\(flag) must be 1 to 86400 seconds, not \(value)")
        }
    }

    func settings() throws -> ClusterCtlConfiguration {
        let environment = try ServiceSettings.environment()
        guard let node = node ?? environment["FOG_RABBITMQ_NODE"] ?? environment["RABBITMQ_NODENAME"], !node.isEmpty else {
            throw ValidationError("no node: give --node or set FOG_RABBITMQ_NODE")
        }
        guard let url = redisURL ?? environment["FOG_REDIS_URL"], !url.isEmpty else {
            throw ValidationError("no Redis: give --redis-url or set FOG_REDIS_URL")
        }
        var configuration = ClusterCtlConfiguration(node: node, redis: try RedisConfiguration(url: url))
        configuration.heartbeatInterval = .seconds(heartbeatInterval)
        configuration.heartbeatTTL = .seconds(heartbeatTTL)
        configuration.masterLease = .seconds(masterLease)
        configuration.queueReplicationInterval = .seconds(queueReplicationInterval)
        do { try configuration.validate() } catch { throw ValidationError("\(error)") }
        return configuration
    }

    var rabbit: RabbitMQCLI { RabbitMQCLI(binDirectory: rabbitmqBin) }

    func agent(_ configuration: ClusterCtlConfiguration) -> ClusterAgent {
        var logger = Logger(label: "clusterctl")
        logger[metadataKey: "node"] = "\(configuration.node)"
        return ClusterAgent(
            configuration: configuration, rabbit: rabbit,
            redis: RedisConnection(configuration: configuration.redis, logger: logger), logger: logger)
    }
}

extension ClusterCtlCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep the local node in the cluster: heartbeat, elect a master, join, prune. Runs until SIGTERM or SIGINT.")
        @OptionGroup var options: ClusterOptions
        @Option(
            help:
                "Address of the local node's AMQP listener, probed on each heartbeat (default: $RABBITMQ_NODE_IP_ADDRESS, else 127.0.0.1).")
        var amqpHost: String?
        @Option(
            help:
                "Port of that listener (default: $RABBITMQ_NODE_PORT, else 5672); 0 asks rabbitmqctl cluster_status on every heartbeat instead."
        )
        var amqpPort: Int?
        @Option(help: "Seconds between full looks at cluster_status while the listener answers.")
        var membershipCheckInterval: Int = 60

        func validate() throws {
            if let amqpPort, !(0...65_535).contains(amqpPort) { throw ValidationError("--amqp-port must be 0 to 65535, not \(amqpPort)") }
            guard (1...86_400).contains(membershipCheckInterval) else {
                throw ValidationError("--membership-check-interval must be 1 to 86400 seconds, not \(membershipCheckInterval)")
            }
        }

        func run() async throws {
            var settings = try options.settings()
            let environment = try ServiceSettings.environment()
            let port: Int
            if let amqpPort {
                port = amqpPort
            } else if let text = environment["RABBITMQ_NODE_PORT"], !text.isEmpty {
                guard let value = Int(text), (1...65_535).contains(value) else {
                    throw ValidationError("RABBITMQ_NODE_PORT must be a port (1 to 65535), not '\(text.prefix(40))'")
                }
                port = value
            } else {
                port = 5672
            }
            let host = amqpHost ?? environment["RABBITMQ_NODE_IP_ADDRESS"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
            settings.listener = port == 0 ? nil : ListenerProbe(host: host, port: UInt16(port))
            settings.membershipCheckInterval = .seconds(membershipCheckInterval)
            do { try settings.validate() } catch { throw ValidationError("\(error)") }
            let agent = options.agent(settings)
            let task = Task { try await agent.run() }
            let signals = [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number)
                source.setEventHandler { task.cancel() }
                source.resume()
                return source
            }
            try await task.value
            for signal in signals { signal.cancel() }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Members, master, heartbeat ages, and RabbitMQ's own view beside them.")
        @OptionGroup var options: ClusterOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let report = try await gather(options)
            print(json ? try encode(report) : report.renderStatus())
        }
    }

    struct Health: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One ✓/✗ line per check; exits 1 when any fails.")
        @OptionGroup var options: ClusterOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let report = try await gather(options)
            print(json ? try encode(report) : report.renderHealth())
            if !report.healthy { throw ExitCode(1) }
        }
    }

    struct Join: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Join the local node to the master's cluster now, by the same rules as `run`.")
        @OptionGroup var options: ClusterOptions
        @Option(help: "Join this node's cluster instead of the master's.") var master: String?

        func run() async throws {
            let configuration = try options.settings()
            let (agent, target) = try await agentAndMaster(options, configuration, override: master)
            let (plan, _) = try await agent.plan(joining: target)
            if case .refuse(let reason) = plan { throw ValidationError("not joining: \(reason)") }
            try await agent.execute(plan, master: target)
            print("\(configuration.node): \(plan == .alreadyMember ? "already a member of" : "joined") \(target)'s cluster")
        }
    }

    struct Rejoin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget the local node on the master, reset it, join again and grow the quorum queues back onto it.")
        @OptionGroup var options: ClusterOptions
        @Flag(help: "Reset even if the node holds messages that exist nowhere else.") var force = false

        func run() async throws {
            let configuration = try options.settings()
            let (agent, target) = try await agentAndMaster(options, configuration, override: nil)
            let unreplicated = try await options.rabbit.unreplicatedMessages(on: configuration.node)
            if unreplicated > 0 && !force {
                throw ValidationError(
                    "\(configuration.node) holds \(unreplicated) messages that exist nowhere else; add --force to lose them")
            }
            try await agent.execute(.forgetThenJoin, master: target)
            print("\(configuration.node) rejoined \(target)'s cluster")
        }
    }

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a (stopped) node from the cluster and from Redis.")
        @OptionGroup var options: ClusterOptions
        @Argument(help: "The node to forget.") var target: String

        func run() async throws {
            let configuration = try options.settings()
            try await options.rabbit.forget(target, on: configuration.node)
            let redis = try await RedisConnection.connect(configuration.redis)
            try await redis.setRemove(ClusterKeys.members, target)
            try await redis.delete(ClusterKeys.heartbeat(target))
            print("forgot \(target)")
        }
    }

    struct Grow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a replica on a node to every quorum queue that lacks one.")
        @OptionGroup var options: ClusterOptions
        @Argument(help: "The node to grow onto (default: the local node).") var target: String?

        func run() async throws {
            let configuration = try options.settings()
            try await options.rabbit.growQueues(onto: target ?? configuration.node)
            print("grew quorum queues onto \(target ?? configuration.node)")
        }
    }

    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the members registered in Redis; --prune drops those whose heartbeat expired.")
        @OptionGroup var options: ClusterOptions
        @Flag(help: "Remove members whose heartbeat expired.") var prune = false

        func run() async throws {
            let configuration = try options.settings()
            let agent = options.agent(configuration)
            if prune {
                for node in try await agent.prune() { print("pruned \(node)") }
            }
            let redis = try await RedisConnection.connect(configuration.redis)
            for member in try await redis.setMembers(ClusterKeys.members).sorted() { print(member) }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that Redis answers (FOG_REDIS_URL).")

        func run() async throws {
            let status = await runConnectivityCheck([(.redis, { try await RedisConnection.probe(url: $0.redisURL ?? "") })])
            if status != 0 { throw ExitCode(status) }
        }
    }
}

private func gather(_ options: ClusterOptions) async throws -> ClusterReport {
    let configuration = try options.settings()
    let redis = RedisConnection(configuration: configuration.redis)
    defer { redis.close() }
    return await ClusterReport.gather(
        redis: redis, rabbit: options.rabbit, nodes: [configuration.node],
        heartbeatTTL: configuration.heartbeatTTL)
}

private func agentAndMaster(_ options: ClusterOptions, _ configuration: ClusterCtlConfiguration, override: String?) async throws -> (
    ClusterAgent, String
) {
    let agent = options.agent(configuration)
    if let override { return (agent, override) }
    let redis = try await RedisConnection.connect(configuration.redis)
    guard let master = try await redis.get(ClusterKeys.master) else { throw ValidationError("no master in Redis yet; give --master") }
    return (agent, master)
}

private func encode(_ report: ClusterReport) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    return String(decoding: try encoder.encode(report), as: UTF8.self)
}
