import ClientSupport
import Coordination
import FogCore
import Foundation
import Logging
import RedisClient
import Synchronization

/// `clusterctl run`: keeps one RabbitMQ node in the cluster through Redis.
///
/// Two loops run side by side. The election loop (every tick, Redis only) claims, renews or
/// gives up the master key. The membership loop (every heartbeat: one `rabbitmqctl
/// cluster_status`, or, for a settled member between full looks, a probe of its AMQP listener)
/// heartbeats, registers the node once it is a member, joins it to the master's cluster when it
/// is not (one node at a time, under a lock), and, on the master, prunes members whose
/// heartbeat expired. They are apart so that slow CLI calls never delay a lease renewal.
/// When Redis is unreachable, nothing is done to RabbitMQ.
public struct ClusterAgent: Sendable {
    public let configuration: ClusterCtlConfiguration
    let rabbit: any RabbitMQControl
    let redis: RedisConnection
    let logger: Logger
    private let shared: Shared
    /// Where the listener probe blocks (a connect, bounded by its timeout).
    private let probeWorker: BlockingWorker?

    /// What the two loops share: the lease, and the last view of the local node.
    final class Shared: Sendable {
        let lease: SharedLease<ContinuousClock>
        /// The last reason given for not claiming the vacant key (said once).
        let lastRefusal = Mutex<String?>(nil)
        let localStatus = Mutex<RabbitClusterStatus?>(nil)
        /// When the master last looked for quorum queues short of members.
        let lastReplicationCheck = Mutex<ContinuousClock.Instant?>(nil)
        /// When `cluster_status` last showed the local node running.
        let lastFullLook = Mutex<ContinuousClock.Instant?>(nil)

        init(leaseTTL: Duration) { lease = SharedLease(ttl: leaseTTL, clock: ContinuousClock()) }
    }

    public init(configuration: ClusterCtlConfiguration, rabbit: any RabbitMQControl, redis: RedisConnection, logger: Logger) {
        self.configuration = configuration
        self.rabbit = rabbit
        self.redis = redis
        self.logger = logger
        self.shared = Shared(leaseTTL: configuration.masterLease)
        self.probeWorker = configuration.listener.map { BlockingWorker(name: "clusterctl probe \($0)") }
    }

    var node: String { configuration.node }

    var isMaster: Bool { shared.lease.isHeld }

    /// Runs until the task is cancelled; then gives up the master key if it holds it.
    public func run() async throws {
        await waitForLocalNode()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await electionLoop() }
            group.addTask { await membershipLoop() }
        }
    }

    private func waitForLocalNode() async {
        var waited = false
        while !Task.isCancelled, !(await rabbit.isRunning(node)) {
            if !waited { logger.info("waiting for the local RabbitMQ node") }
            waited = true
            try? await Task.sleep(for: .seconds(2))
        }
        logger.info("the local RabbitMQ node is running")
    }

    // MARK: Election

    /// The master election: `LeaseElection` on `rabbitmq:cluster:master`, with JoinPlanner's
    /// rule for who may claim the vacant key, and the epoch that numbers masterships.
    var election: LeaseElection<ContinuousClock> {
        LeaseElection(
            key: ClusterKeys.master, holder: node, lease: shared.lease, redis: redis, logger: logger,
            mayClaim: { try await mayClaim() }, newToken: { adopted in try await masterEpoch(adopted: adopted) },
            changed: { change in await masterChanged(change) })
    }

    private func electionLoop() async {
        await election.run(every: configuration.tick)
    }

    /// Claims the vacant key from the last view of the local node (at most a membership check
    /// old, its listener answering since): a CLI call here would cost half a second of the
    /// failover. A node that died meanwhile releases the key at its next heartbeat.
    private func mayClaim() async throws -> Bool {
        guard let status = shared.localStatus.withLock({ $0 }) else { return false }
        let live = try await liveMembers()
        let may = JoinPlanner.mayLead(node: node, local: status, liveMembers: live)
        let refusal = may ? nil : "not claiming the vacant master key: live members \(live.sorted()) are not all in this node's cluster"
        let said = shared.lastRefusal.withLock { last in
            defer { last = refusal }
            return last == refusal
        }
        if let refusal, !said { logger.info("\(refusal)") }
        return may
    }

    /// The epoch only numbers masterships (for the logs and status): an adopted key keeps the
    /// one in Redis; a new mastership takes the next. A value in Redis that no INCR takes
    /// (garbage, 2^63-1) is started again rather than keeping every node from leading.
    private func masterEpoch(adopted: Bool) async throws -> Int {
        if adopted { return Int(try await redis.get(ClusterKeys.epoch) ?? "0") ?? 0 }
        do {
            return try await redis.increment(ClusterKeys.epoch)
        } catch let error as RedisError where error.code == .server {
            logger.warning("\(ClusterKeys.epoch) cannot be incremented (\(error)): starting it again at 1")
            try await redis.set(ClusterKeys.epoch, to: "1")
            return 1
        }
    }

    private func masterChanged(_ change: LeaseElection<ContinuousClock>.Change) async {
        switch change {
        case .gained(let epoch, let adopted):
            if adopted {
                logger.info("holds the master key again", metadata: ["epoch": "\(epoch)"])
            } else {
                logger.notice("became master", metadata: ["epoch": "\(epoch)"])
            }
            try? await register()
        case .lapsed: logger.warning("the master lease lapsed without renewal: no longer master")
        case .taken: logger.warning("another node holds the master key: no longer master")
        case .released: logger.info("gave up the master key")
        }
    }

    /// Members whose heartbeat key still exists and holds a time (seconds since 1970, at most a
    /// day ahead): a value no clusterctl writes is no heartbeat, and never holds up an election.
    func liveMembers() async throws -> Set<String> {
        let members = try await redis.setMembers(ClusterKeys.members).sorted()
        guard !members.isEmpty else { return [] }
        let replies = try await redis.pipeline(members.map { ["GET", ClusterKeys.heartbeat($0)] })
        let now = Int(Date().timeIntervalSince1970)
        return Set(
            zip(members, replies).filter { _, reply in
                reply.string.flatMap { Int($0) }.map { (0...now + 86_400).contains($0) } ?? false
            }.map(\.0))
    }

    // MARK: Membership

    private func membershipLoop() async {
        var log = OnceLog(logger: logger)
        var settled = false
        while !Task.isCancelled {
            settled = await reconcile(settled: settled, log: &log)
            // Until the node is a settled member, look again soon, not a heartbeat later.
            try? await Task.sleep(for: settled ? configuration.heartbeatInterval : min(configuration.heartbeatInterval, .seconds(2)))
        }
    }

    /// Checks the local node, heartbeats, joins or prunes. True when the node is a settled member.
    /// One `cluster_status` call (a CLI call boots an Erlang VM: about half a second of CPU)
    /// tells both whether the node runs and what its cluster is. A node that was settled at the
    /// last turn, whose last full look is younger than the membership check interval (and, on
    /// the master, whose queue check is not due), is looked at through its AMQP listener
    /// instead: while it answers, the node has run since that look, in the cluster it showed
    /// (a restart takes it away for seconds; a node that does not answer gets the full look).
    func reconcile(settled: Bool, log: inout OnceLog) async -> Bool {
        let observed: RabbitClusterStatus?
        if settled, let known = shared.localStatus.withLock({ $0 }), !fullLookDue(), await listenerAnswers() {
            observed = known
        } else {
            observed = try? await rabbit.clusterStatus(node)
            if observed?.runningNodes.contains(node) == true { shared.lastFullLook.withLock { $0 = .now } }
        }
        guard let status = observed, status.runningNodes.contains(node) else {
            log.say("localDown", .warning, "the local RabbitMQ node is not running; not heartbeating")
            if shared.lease.value.isHolding {
                logger.warning("releasing the master key: the local node is down")
                await election.release()
            }
            return false
        }
        log.clear("localDown", "the local RabbitMQ node runs again")
        shared.localStatus.withLock { $0 = status }
        do {
            if isMaster {
                try await register()
                try await prune()
                try await replicateQueues(running: status.runningNodes)
                return true
            }
            guard let master = try await redis.get(ClusterKeys.master) else { return false }
            if status.nodes.contains(master) {
                try await register()
                log.clear("join", "")
                return true
            }
            try await join(master: master, log: &log)
            return false
        } catch {
            log.say("reconcile", .warning, "cannot reconcile membership: \(error)")
            return false
        }
    }

    /// A full look is due without a listener to ask, once the interval has passed since the
    /// last one, and on the master when its queue check is (that check needs the running nodes).
    private func fullLookDue() -> Bool {
        guard configuration.listener != nil else { return true }
        let now = ContinuousClock.now
        if shared.lastFullLook.withLock({ last in last.map { now - $0 >= configuration.membershipCheckInterval } ?? true }) { return true }
        return isMaster
            && shared.lastReplicationCheck.withLock { last in last.map { now - $0 >= configuration.queueReplicationInterval } ?? true }
    }

    private func listenerAnswers() async -> Bool {
        guard let listener = configuration.listener, let probeWorker else { return false }
        return await listener.accepts(on: probeWorker)
    }

    /// SADD to the members and a fresh heartbeat, in one round trip.
    func register() async throws {
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let ttl = String(Int(configuration.heartbeatTTL.seconds.rounded(.up)))
        let replies = try await redis.pipeline([
            ["SET", ClusterKeys.heartbeat(node), timestamp, "EX", ttl],
            ["SADD", ClusterKeys.members, node],
        ])
        if let failure = replies.first(where: { if case .error = $0 { return true } else { return false } }) {
            throw RedisError(.server, "heartbeat refused: \(failure)")
        }
    }

    /// As master: members whose heartbeat expired leave the set, each logged.
    @discardableResult
    public func prune() async throws -> [String] {
        let members = try await redis.setMembers(ClusterKeys.members)
        let live = try await liveMembers()
        let stale = members.subtracting(live).sorted()
        for member in stale {
            try await redis.setRemove(ClusterKeys.members, member)
            logger.warning("pruned a member whose heartbeat expired", metadata: ["member": "\(member)"])
        }
        return stale
    }

    /// As master, every `queueReplicationInterval`: grows quorum queues onto the running nodes
    /// they lack (QueueReplication), so that no queue lives on fewer nodes than the cluster has.
    func replicateQueues(running: Set<String>) async throws {
        let now = ContinuousClock.now
        let due = shared.lastReplicationCheck.withLock { last in
            guard last.map({ now - $0 >= configuration.queueReplicationInterval }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        let queues = try await rabbit.quorumQueues(on: node)
        for target in QueueReplication.nodesToGrow(queues, running: running) {
            let short = queues.filter { !$0.members.contains(target) }.map(\.name)
            try await rabbit.growQueues(onto: target)
            logger.notice(
                "grew quorum queues onto a member they lacked",
                metadata: ["member": "\(target)", "queues": "\(short.count)", "first": "\(short.prefix(3))"])
        }
    }

    /// The plan for joining `master`'s cluster now, from both nodes' views.
    public func plan(joining master: String) async throws -> (JoinPlanner.Plan, RabbitClusterStatus) {
        let local = try await rabbit.clusterStatus(node)
        let masterView = try await rabbit.clusterStatus(master)
        let unreplicated = try await rabbit.unreplicatedMessages(on: node)
        let plan = JoinPlanner.plan(node: node, local: local, master: master, masterView: masterView, unreplicatedMessages: unreplicated)
        return (plan, masterView)
    }

    /// Brings the node into `master`'s cluster by the planner's rule, one node at a time.
    func join(master: String, log: inout OnceLog) async throws {
        // While another node joins, do not spend CLI calls planning.
        if let holder = try await redis.get(ClusterKeys.joinLock), holder != node {
            log.say("joinLock", .info, "waiting for \(holder)'s join to finish")
            return
        }
        let (plan, masterView) = try await plan(joining: master)
        if case .refuse(let reason) = plan {
            log.say("join", .error, "not joining \(master): \(reason); resolve it, then run `clusterctl rejoin`")
            return
        }
        guard plan != .alreadyMember else { return }
        // The lock is ours if we take it, or if an earlier run of ours died holding it.
        var taken = try await redis.set(ClusterKeys.joinLock, to: node, expiry: configuration.joinLockTTL, onlyIfAbsent: true)
        if !taken { taken = try await redis.compareAndExpire(ClusterKeys.joinLock, expected: node, ttl: configuration.joinLockTTL) }
        guard taken else {
            log.say("joinLock", .info, "waiting for another node's join to finish")  // taken in between
            return
        }
        log.clear("joinLock", "")
        do {
            let blockers = await wipedPeers(in: masterView)
            if blockers.isEmpty {
                try await execute(plan, master: master)
                try await register()
            } else if plan == .forgetThenJoin {
                // Leave the cluster's list first, so that the wiped peers can do the same;
                // joining now would fail on their fresh schemas. Join at a later turn.
                logger.notice("leaving the cluster's list before joining", metadata: ["waitingFor": "\(blockers.sorted())"])
                try await rabbit.leaveList(node, master: master)
            } else {
                log.say("blockers", .info, "waiting for wiped nodes \(blockers.sorted()) to leave the cluster's list before joining")
            }
        } catch {
            // Every failed attempt is logged: each one ran commands on the node.
            logger.warning("joining failed; will try again", metadata: ["master": "\(master)", "error": "\(error)"])
        }
        _ = try? await redis.compareAndDelete(ClusterKeys.joinLock, expected: node)
    }

    /// Nodes the cluster lists as members but that run on their own: wiped nodes that have not
    /// left the list yet. A join while one exists fails (mnesia meets a foreign schema).
    func wipedPeers(in masterView: RabbitClusterStatus) async -> Set<String> {
        var wiped: Set<String> = []
        for peer in masterView.nodes.subtracting(masterView.runningNodes).subtracting([node]) {
            if let view = try? await rabbit.clusterStatus(peer), view.isStandalone(peer) { wiped.insert(peer) }
        }
        return wiped
    }

    /// Carries out a join plan with rabbitmqctl, logging it and the time it took.
    public func execute(_ plan: JoinPlanner.Plan, master: String) async throws {
        let started = ContinuousClock.now
        logger.notice("joining the master's cluster", metadata: ["master": "\(master)", "plan": "\(plan)"])
        switch plan {
        case .alreadyMember, .refuse:
            return
        case .join:
            try await rabbit.resetAndJoin(node, master: master)
            // Queues declared before this node joined have no member here yet.
            try await rabbit.growQueues(onto: node)
        case .forgetThenJoin:
            try await rabbit.resetAndJoin(node, master: master, forgetFirst: true)
            try await rabbit.growQueues(onto: node)
        case .resetThenRejoin:
            try await rabbit.resetAndJoin(node, master: master)
            try await rabbit.growQueues(onto: node)
        }
        logger.notice("joined", metadata: ["master": "\(master)", "seconds": "\((ContinuousClock.now - started).seconds)"])
    }
}

/// Logs a condition once when it starts and once when it ends, not on every retry.
struct OnceLog {
    let logger: Logger
    private var active: [String: String] = [:]

    init(logger: Logger) { self.logger = logger }

    mutating func say(_ key: String, _ level: Logger.Level, _ message: String) {
        guard active[key] != message else { return }
        active[key] = message
        logger.log(level: level, "\(message)")
    }

    mutating func clear(_ key: String, _ message: String) {
        guard active.removeValue(forKey: key) != nil, !message.isEmpty else { return }
        logger.info("\(message)")
    }
}
