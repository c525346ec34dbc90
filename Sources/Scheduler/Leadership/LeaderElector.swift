import FogCore
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization

/// Who leads, as this replica knows it; read by the dispatcher and the failure detector,
/// which resign it when the fence refuses their epoch.
public final class Leadership: Sendable {
    private struct State {
        var epoch: Int?
        /// A loop found the epoch stale: the elector gives the lease up at once.
        var resigned = false
    }

    private let state = Mutex(State())

    public init() {}

    /// The epoch of this replica's leadership, nil when it does not lead.
    public var epoch: Int? { state.withLock { $0.epoch } }

    func set(_ epoch: Int?) { state.withLock { $0 = State(epoch: epoch) } }

    /// The fence refused `error.epoch`: a newer leader exists, or this one's token is stale.
    /// This replica stops leading now and gives up its lease, so that a leader with a current
    /// token (perhaps this replica again, with the next epoch) takes over within a tick.
    public func resign(_ error: StaleLeader, logger: Logger) {
        let resigned = state.withLock { state -> Bool in
            guard state.epoch == error.epoch else { return false }
            state = State(epoch: nil, resigned: true)
            return true
        }
        if resigned { logger.warning("\(error): giving up the leader lease") }
    }

    /// True once after `resign`.
    func takeResignation() -> Bool {
        state.withLock { state in
            defer { state.resigned = false }
            return state.resigned
        }
    }
}

/// Elects one leader among the scheduler replicas through `fog:scheduler:leader`
/// (SET NX PX, renewed by compare-and-expire) and hands each new leadership a fencing token
/// that the database's fence makes higher than every earlier one (`TaskStore.takeEpoch`; Redis's
/// `fog:scheduler:epoch` only mirrors it, since Redis may forget and may hold anything). A
/// leader that cannot renew stops leading when its lease would have run out, before anyone
/// else can take the key; one whose token the fence refused resigns and frees the key.
/// `MasterLease` holds the timing rules, shared with clusterctl.
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
            if leadership.takeResignation(), state.isMaster {
                state.lost()
                _ = try? await redis.compareAndDelete(FogKeys.schedulerLeader, expected: instanceID)
            }
            do {
                switch state.tick(now: now) {
                case .observe where !state.isMaster:
                    if try await redis.set(FogKeys.schedulerLeader, to: instanceID, expiry: lease, onlyIfAbsent: true) {
                        let epoch: Int
                        do {
                            epoch = try await store.takeEpoch()
                        } catch {
                            _ = try? await redis.compareAndDelete(FogKeys.schedulerLeader, expected: instanceID)
                            throw error
                        }
                        // For operators (`make redis`): the token itself lives in the database.
                        _ = try? await redis.set(FogKeys.schedulerEpoch, to: String(epoch))
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
}
