import Coordination
import FogCore
import Logging
import ServiceLifecycle

/// Who leads, as this replica knows it: the lease of `fog:scheduler:leader` on the monotonic
/// clock. The dispatcher and the failure detector read `epoch` before each round; it is nil
/// from the instant the lease would have lapsed, even while the election is stuck in a call.
public final class Leadership: Sendable {
    public let lease: SharedLease<ContinuousClock>

    public init(ttl: Duration) { lease = SharedLease(ttl: ttl, clock: ContinuousClock()) }

    /// The epoch of this replica's leadership, nil when it does not lead.
    public var epoch: Int? { lease.token }

    /// The fence refused `error.epoch`: a newer leader exists, or this one's token is stale.
    /// This replica stops leading now and gives up its lease, so that a leader with a current
    /// token (perhaps this replica again, with the next epoch) takes over within a tick.
    public func resign(_ error: StaleLeader, logger: Logger) {
        if lease.resign(token: error.epoch) { logger.warning("\(error): giving up the leader lease") }
    }
}

/// Elects one leader among the scheduler replicas through `fog:scheduler:leader`
/// (`LeaseElection`, shared with clusterctl's master election) and hands each new leadership a
/// fencing token that the database's fence makes higher than every earlier one
/// (`TaskStore.takeEpoch`; Redis's `fog:scheduler:epoch` only mirrors it, since Redis may
/// forget and may hold anything).
public struct LeaderElector: Service {
    let context: SchedulerContext

    public init(context: SchedulerContext) { self.context = context }

    public func run() async throws {
        let (redis, store, logger) = (context.redis, context.store, context.logger)
        let election = LeaseElection(
            key: FogKeys.schedulerLeader, holder: context.configuration.instanceID, lease: context.leadership.lease,
            redis: redis, logger: logger,
            newToken: { _ in try await store.takeEpoch() },
            changed: { change in
                switch change {
                case .gained(let epoch, _):
                    // For operators (`make redis`): the token itself lives in the database.
                    _ = try? await redis.set(FogKeys.schedulerEpoch, to: String(epoch))
                    logger.notice("leading the schedulers", metadata: ["epoch": "\(epoch)"])
                case .lapsed: logger.warning("could not renew the leader lease in time: following")
                case .taken: logger.warning("another scheduler holds the leader key: following")
                case .released: logger.info("gave up the leader key")
                }
            })
        await cancelWhenGracefulShutdown {
            await election.run(every: context.configuration.leaderTick)
        }
    }
}
