import ArgumentParser
import ServiceSupport

/// `scheduler`: the scheduler service and its operator commands.
@main
struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "FogScheduler's scheduler: stores tasks, places them on fog nodes, tracks them.",
        subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that PostgreSQL, RabbitMQ and Redis answer (FOG_DATABASE_URL, FOG_BROKER_URL, FOG_REDIS_URL).")

        func run() async throws {
            let status = await runConnectivityCheck(services: [.database, .broker, .redis])
            if status != 0 { throw ExitCode(status) }
        }
    }
}
