import FogCore
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization

/// Who leads, as this replica knows it; read by the dispatcher and the failure detector.
public final class Leadership: Sendable {
    private let state = Mutex<Int?>(nil)

    public init() {}

    /// The epoch of this replica's leadership, nil when it does not lead.
    public var epoch: Int? { state.withLock { $0 } }

    func set(_ epoch: Int?) { state.withLock { $0 = epoch } }
}

/// Elects one leader among the scheduler replicas through `fog:scheduler:leader`
/// (SET NX PX, renewed by compare-and-expire) and hands each new leadership a fencing token
/// from `fog:scheduler:epoch`, raised in the database before it dispatches. A leader that
/// cannot renew stops leading when its lease would have run out, before anyone else can
/// take the key. `MasterLease` holds the timing rules, shared with clusterctl.
public struct LeaderElector: Service {
    let context: SchedulerContext

    public init(context: SchedulerContext) { self.context = context }

    public func run() async throws {
        let (redis, store, leadership, logger) = (context.redis, context.store, context.leadership, context.logger)
        let (instanceID, lease, tick) = (context.configuration.instanceID, context.configuration.leaderLease, context.configuration.leaderTick)
        var state = MasterLease(ttl: lease)
        let clock = ContinuousClock()
        let start = clock.now
        var failing = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = clock.now - start
            do {
                switch state.tick(now: now) {
                case .observe where !state.isMaster:
                    if try await redis.set(FogKeys.schedulerLeader, to: instanceID, expiry: lease, onlyIfAbsent: true) {
                        let epoch = try await redis.increment(FogKeys.schedulerEpoch)
                        do {
                            try await store.raiseFence(to: epoch)
                        } catch {
                            _ = try? await redis.compareAndDelete(FogKeys.schedulerLeader, expected: instanceID)
                            throw error
                        }
                        state.held(epoch: epoch, at: now)
                        leadership.set(epoch)
                        logger.notice("leading the schedulers", metadata: ["epoch": "\(epoch)"])
                    }
                case .observe:
                    break
                case .renew:
                    if try await redis.compareAndExpire(FogKeys.schedulerLeader, expected: instanceID, ttl: lease) {
                        state.renewed(at: now)
                    } else {
                        state.lost()
                        leadership.set(nil)
                        logger.warning("another scheduler holds the leader key: following")
                    }
                case .stepDown:
                    leadership.set(nil)
                    logger.warning("could not renew the leader lease in time: following")
                }
                if failing { logger.info("Redis answers the leader election again") }
                failing = false
            } catch {
                if !failing { logger.error("leader election: \(error)") }
                failing = true
            }
            try? await Task.sleep(for: tick)
        }
        if state.isMaster {
            leadership.set(nil)
            _ = try? await redis.compareAndDelete(FogKeys.schedulerLeader, expected: instanceID)
            logger.info("gave up the leadership on shutdown")
        }
    }

    /// A dispatch was refused by the fence: this replica stops leading at once.
    public static func stepDown(_ leadership: Leadership, logger: Logger, because error: StaleLeader) {
        leadership.set(nil)
        logger.warning("\(error): following")
    }
}
