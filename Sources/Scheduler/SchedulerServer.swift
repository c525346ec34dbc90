import AMQPClient
import BrokerTopology
import ClientSupport
import FogCore
import Hummingbird
import Logging
import PostgresClient
import RedisClient
import ServiceLifecycle

/// `scheduler serve`: wires the store, the broker and Redis connections, the HTTP API and the
/// loops into one `ServiceGroup`, which stops them in order on SIGTERM or SIGINT.
public enum SchedulerServer {
    public static func run(_ configuration: SchedulerConfiguration, logger: Logger) async throws {
        let pool = PostgresPool(
            configuration: try PostgresConfiguration(url: configuration.services.databaseURL ?? ""),
            maximumConnections: configuration.databasePoolSize, waitLimit: .seconds(5), logger: logger)
        let store = TaskStore(pool: pool, logger: logger)
        if configuration.autoMigrate { try await migrateWhenReachable(pool, logger: logger) }

        let brokers = try AMQPConfiguration(
            urls: configuration.services.brokerURLs ?? "", connectionName: "scheduler \(configuration.instanceID)")
        let publishing = AMQPConnection(configuration: brokers, logger: logger)
        var consumingConfiguration = brokers
        consumingConfiguration.connectionName += " events"
        let consuming = AMQPConnection(configuration: consumingConfiguration, logger: logger)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.services.redisURL ?? ""), logger: logger)
        defer {
            publishing.close()
            consuming.close()
            redis.close()
        }

        let context = SchedulerContext(
            store: store, directory: NodeDirectory(redis: redis, logger: logger),
            publisher: TaskPublisher(connection: publishing, logger: logger),
            redis: redis, leadership: Leadership(ttl: configuration.leaderLease), nudge: DispatchNudge(), configuration: configuration,
            metrics: SchedulerMetrics(),
            logger: logger)
        let app = Application(
            router: SchedulerAPI(context: context).router(),
            configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: "fogscheduler"),
            logger: logger)
        let services: [any Service] = [
            TopologySetup(connections: [publishing, consuming], logger: logger),
            LeaderElector(context: context),
            Dispatcher(context: context),
            FailureDetector(context: context),
            EventConsumer(connection: consuming, context: context),
            app,
        ]
        logger.notice("scheduler \(configuration.instanceID) serving on http://\(configuration.httpHost):\(configuration.httpPort)")
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await pool.close()
    }

    /// Applies migrations, waiting for the database if it is not up yet (a stack that starts
    /// everything at once).
    static func migrateWhenReachable(_ pool: PostgresPool, logger: Logger) async throws {
        var reported = false
        while true {
            do {
                let applied = try await Migrations.migrate(pool, logger: logger)
                if !applied.isEmpty { logger.notice("database migrated to version \(Migrations.latest)") }
                return
            } catch let error as PostgresError where error.isConnectionError || error.code == .poolTimeout {
                if !reported { logger.warning("waiting for the database: \(error)") }
                reported = true
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// Declares the shared topology once the broker answers, then waits for shutdown. The
/// connections declare it again by themselves after each reconnect.
struct TopologySetup: Service {
    let connections: [AMQPConnection]
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for connection in connections {
                _ = await RetryLog.retrying("cannot declare the broker topology yet", logger: logger) {
                    try await TopologyDeclarations.declareShared(on: connection)
                }
            }
        }
        try? await gracefulShutdown()
    }
}
