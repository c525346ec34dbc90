import RedisClient

/// clusterctl's settings, with the defaults of the design (heartbeat every 10 s, TTL 30 s).
public struct ClusterCtlConfiguration: Sendable {
    /// The local RabbitMQ node (`rabbit@rabbitmq1`, `rmq1@localhost`).
    public var node: String
    public var redis: RedisConfiguration
    public var heartbeatInterval: Duration = .seconds(10)
    public var heartbeatTTL: Duration = .seconds(30)
    /// How long the master key lives without renewal; a new master holds it within this + 1 tick.
    public var masterLease: Duration = .seconds(10) {
        didSet { tick = Self.tick(for: masterLease) }
    }
    /// How often the election is looked at (Redis only: cheap): a tenth of the lease, between
    /// 200 ms and 1 s, so that a failover takes at most the lease plus a small fraction of it.
    public var tick: Duration = .seconds(1)

    static func tick(for lease: Duration) -> Duration {
        min(.seconds(1), max(.milliseconds(200), lease / 10))
    }
    /// How often the master looks for quorum queues short of a running member (two CLI calls
    /// per vhost) and grows them.
    public var queueReplicationInterval: Duration = .seconds(30)
    /// The local node's AMQP listener, asked on each heartbeat of a settled member instead of
    /// `cluster_status` (nil: `cluster_status` every heartbeat).
    public var listener: ListenerProbe?
    /// How often a settled member looks at `cluster_status` even while its listener answers:
    /// the bound on how long a membership change that kept the node up goes unseen.
    public var membershipCheckInterval: Duration = .seconds(60)
    /// How long one join may hold the join lock.
    public var joinLockTTL: Duration = .seconds(60)

    public init(node: String, redis: RedisConfiguration) {
        self.node = node
        self.redis = redis
    }

    /// Refuses settings that cannot work together, naming them.
    public func validate() throws {
        func fail(_ reason: String) -> ValidationFailure { ValidationFailure(reason: reason) }
        guard node.contains("@"), !node.hasPrefix("@"), !node.hasSuffix("@") else {
            throw fail("the node name '\(node)' must look like name@host")
        }
        guard heartbeatInterval > .zero, heartbeatTTL > heartbeatInterval else {
            throw fail("the heartbeat TTL (\(heartbeatTTL)) must be longer than its interval (\(heartbeatInterval))")
        }
        guard membershipCheckInterval >= heartbeatInterval else {
            throw fail(
                "the membership check interval (\(membershipCheckInterval)) must be at least the heartbeat interval (\(heartbeatInterval))")
        }
        guard queueReplicationInterval > .zero else {
            throw fail("the queue replication interval (\(queueReplicationInterval)) must be positive")
        }
        guard masterLease >= tick * 3 else {
            throw fail("the master lease (\(masterLease)) must be at least three ticks (\(tick)) to be renewed in time")
        }
    }

    public struct ValidationFailure: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }
}
