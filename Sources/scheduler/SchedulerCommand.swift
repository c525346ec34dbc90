import AMQPClient
import ArgumentParser
import Foundation
import Logging
import PostgresClient
import RedisClient
import Scheduler
import ServiceCommand

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `scheduler`: the scheduler service and its operator commands.
@main
struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "FogScheduler's scheduler: stores tasks, places them on fog nodes, tracks them.",
        subcommands: [
            Serve.self, Migrate.self, Submit.self, Tasks.self, ShowTask.self, Cancel.self, Nodes.self, Wait.self, Check.self,
            Simulate.self, Probe.self,
        ])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the service: HTTP API, leader election, dispatcher, event consumer, failure detector.",
            discussion: "Settings come from FOG_* variables (docs/CONFIGURATION.md); the flags override them.")

        @Option(help: "Address to listen on (FOG_HTTP_HOST, default 127.0.0.1).") var host: String?
        @Option(help: "Port to listen on (FOG_HTTP_PORT, default 8080).") var port: Int?
        @Option(help: "This replica's name (FOG_INSTANCE_ID, default host-pid).") var instance: String?

        func run() async throws {
            var environment = try ServiceSettings.environment()
            if let host { environment["FOG_HTTP_HOST"] = host }
            if let port { environment["FOG_HTTP_PORT"] = String(port) }
            if let instance { environment["FOG_INSTANCE_ID"] = instance }
            let configuration = try configured { try SchedulerConfiguration(environment: environment) }
            try await SchedulerServer.run(configuration, logger: makeLogger("scheduler"))
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the database migrations not applied yet (FOG_DATABASE_URL).")

        func run() async throws {
            let environment = try ServiceSettings.environment()
            guard let url = environment["FOG_DATABASE_URL"], !url.isEmpty else {
                throw ValidationError("FOG_DATABASE_URL is not set")
            }
            let logger = makeLogger("scheduler")
            let pool = PostgresPool(configuration: try PostgresConfiguration(url: url), maximumConnections: 1, logger: logger)
            let applied = try await Migrations.migrate(pool, logger: logger)
            print(
                applied.isEmpty
                    ? "the database is at version \(Migrations.latest): nothing to do"
                    : "applied migrations \(applied.map(String.init).joined(separator: ", ")); now at version \(Migrations.latest)")
            await pool.close()
        }
    }

    /// The container healthcheck: no curl in the image, so the binary asks itself.
    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "GET a URL; exit 0 on a 2xx answer within 3 s, 1 otherwise.")
        @Argument(help: "The URL, e.g. http://127.0.0.1:8080/healthz.") var url: String

        func run() async throws {
            guard let target = URL(string: url) else { throw ValidationError("invalid URL \(url)") }
            var request = URLRequest(url: target)
            request.timeoutInterval = 3
            let status = (try? await URLSession.shared.data(for: request)).flatMap { ($0.1 as? HTTPURLResponse)?.statusCode } ?? 0
            if !(200..<300).contains(status) {
                FileHandle.standardError.write(Data("scheduler probe: \(url) answered \(status == 0 ? "nothing" : String(status))\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that PostgreSQL, RabbitMQ and Redis answer (FOG_DATABASE_URL, FOG_BROKER_URL, FOG_REDIS_URL).")

        func run() async throws {
            let status = await runConnectivityCheck([
                (.database, { try await PostgresConnection.probe(url: $0.databaseURL ?? "") }),
                (.broker, { try await AMQPConnection.probe(urls: $0.brokerURLs ?? "") }),
                (.redis, { try await RedisConnection.probe(url: $0.redisURL ?? "") }),
            ])
            if status != 0 { throw ExitCode(status) }
        }
    }
}

/// Reads a configuration, turning a settings error into a clean message and exit status 2.
func configured<T>(_ make: () throws -> T) throws -> T {
    do { return try make() } catch {
        FileHandle.standardError.write(Data("scheduler: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

func makeLogger(_ label: String) -> Logger {
    LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["FOG_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}
