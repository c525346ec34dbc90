import ArgumentParser
import ServiceSupport

/// `clusterctl`: keeps the RabbitMQ cluster whole through Redis.
@main
struct ClusterCtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusterctl",
        abstract: "FogScheduler's RabbitMQ cluster helper: membership, heartbeats and master election in Redis.",
        subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that Redis answers (FOG_REDIS_URL).")

        func run() async throws {
            let status = await runConnectivityCheck(services: [.redis])
            if status != 0 { throw ExitCode(status) }
        }
    }
}
