import Logging
import RedisClient

/// What the scheduler's parts share: the store, the node directory, the publisher, who leads,
/// the dispatcher's wake-up, settings, metrics and the logger. Built once by `SchedulerServer`.
public struct SchedulerContext: Sendable {
    public let store: TaskStore
    public let directory: NodeDirectory
    public let publisher: TaskPublisher
    public let redis: RedisConnection
    public let leadership: Leadership
    public let nudge: DispatchNudge
    public let configuration: SchedulerConfiguration
    public let metrics: SchedulerMetrics
    public let logger: Logger

    public init(
        store: TaskStore, directory: NodeDirectory, publisher: TaskPublisher, redis: RedisConnection, leadership: Leadership,
        nudge: DispatchNudge, configuration: SchedulerConfiguration, metrics: SchedulerMetrics, logger: Logger
    ) {
        self.store = store
        self.directory = directory
        self.publisher = publisher
        self.redis = redis
        self.leadership = leadership
        self.nudge = nudge
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }
}
