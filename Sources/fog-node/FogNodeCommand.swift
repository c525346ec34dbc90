import ArgumentParser
import ServiceSupport

/// `fog-node`: the executor that runs tasks on an edge host.
@main
struct FogNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fog-node",
        abstract: "FogScheduler's fog node: runs the tasks placed on this host within their limits.",
        subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that RabbitMQ and Redis answer (FOG_BROKER_URL, FOG_REDIS_URL). A fog node never needs the database.")

        func run() async throws {
            let status = await runConnectivityCheck(services: [.broker, .redis])
            if status != 0 { throw ExitCode(status) }
        }
    }
}
