import ClientSupport
import FogCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Wakes the dispatcher at once when this replica accepted new tasks, an outcome freed room,
/// or the failure detector took attempts back. (It polled a flag every 20 ms before: 13 ms of
/// a task's median latency at 25 tasks/s, docs/BENCHMARKS.md.)
public final class DispatchNudge: Sendable {
    private let bell = Doorbell()

    public init() {}

    public func signal() { bell.ring() }

    /// Returns after `limit`, or as soon as a signal comes (or came since the last wait).
    func wait(upTo limit: Duration) async { await bell.wait(upTo: limit) }
}

/// The leader's dispatch loop (DESIGN.md §3): takes pending tasks in order, places each on a
/// live node with room, writes the attempts under the leader fence, publishes them with
/// confirms, and records which were confirmed. Attempts left unconfirmed are published
/// again, with the same ids, after `republishAfter`, and at once by a new leader.
///
/// A round's publishes and their record go on beside the next rounds (up to
/// `publishesInFlight` rounds at once): the next placement needs only the committed attempts,
/// which reservations already count, not their confirms.
public struct Dispatcher: Service {
    let context: SchedulerContext
    var store: TaskStore { context.store }
    var configuration: SchedulerConfiguration { context.configuration }
    var leadership: Leadership { context.leadership }
    var logger: Logger { context.logger }

    /// Rounds whose publishes may be in flight at once.
    let publishesInFlight = 4

    public init(context: SchedulerContext) { self.context = context }

    public func run() async throws {
        let policy = PlacementPolicies.make(configuration.placementPolicy, weights: configuration.smartWeights) ?? SmartPolicy()
        // The policy's state (a round-robin position) and the affinity rate buckets live as
        // long as this replica leads; a new leader starts them afresh.
        var placement = BatchPlacement(policy: policy, candidates: [], limiter: configuration.affinityLimiter)
        var sweptEpoch: Int?
        var lastSweep = ContinuousClock.now
        var failure: String?
        let publishing = Publishing(limit: publishesInFlight)
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                guard let epoch = leadership.epoch else {
                    sweptEpoch = nil
                    await context.nudge.wait(upTo: configuration.leaderTick)
                    continue
                }
                do {
                    if sweptEpoch != epoch || ContinuousClock.now - lastSweep >= configuration.republishAfter {
                        // A new leader republishes everything its predecessor left unconfirmed.
                        try await republish(olderThan: sweptEpoch != epoch ? .zero : configuration.republishAfter)
                        sweptEpoch = epoch
                        lastSweep = .now
                    }
                    await publishing.waitForRoom()
                    let placed = try await round(epoch: epoch, placement: &placement) { attempts, started in
                        publishing.begin()
                        group.addTask {
                            await publishAndRecord(attempts, started: started)
                            publishing.end()
                        }
                    }
                    if let failure { logger.info("dispatching again after: \(failure)") }
                    failure = nil
                    if placed < configuration.dispatchBatch { await context.nudge.wait(upTo: configuration.dispatchInterval) }
                } catch let stale as StaleLeader {
                    leadership.resign(stale, logger: logger)
                } catch {
                    let text = "\(error)"
                    if failure != text { logger.error("dispatch paused: \(text)") }
                    failure = text
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// One dispatch transaction; hands its attempts to `publish` and answers how many tasks it placed.
    func round(
        epoch: Int, placement: inout BatchPlacement,
        publish: (_ attempts: [TaskStore.QueuedAttempt], _ started: ContinuousClock.Instant) -> Void
    ) async throws -> Int {
        let started = ContinuousClock.now
        // Redis and PostgreSQL are asked at once: the round waits for the slower, not for both.
        async let liveNodes = context.directory.liveNodes()
        async let reserved = store.reservations()
        let nodes = try await liveNodes
        await context.publisher.ensureQueues(of: Set(nodes.map(\.info.id)))
        let reservations = try await reserved
        placement.candidates = nodes.sorted { ($0.info.startedAt, $0.info.id) < ($1.info.startedAt, $1.info.id) }
            .enumerated().map { order, node in
                NodeCandidate(
                    info: node.info, reserved: reservations[node.info.id]?.resources ?? .zero,
                    active: reservations[node.info.id]?.active ?? 0, order: order, queued: node.load?.queued ?? 0)
            }
        placement.activeByKey = placement.limiter.maxActive == nil ? [:] : try await store.activeByAffinityKey()
        let attempts: [TaskStore.QueuedAttempt]
        (attempts, placement) = try await store.dispatch(
            epoch: epoch, limit: configuration.dispatchBatch, placement: placement, at: Date().timeIntervalSince1970)
        guard !attempts.isEmpty else { return 0 }
        publish(attempts, started)
        return attempts.count
    }

    /// Publishes a round's attempts and records which the broker confirmed. One that fails to
    /// be recorded stays unconfirmed in the store and is published again by the sweep.
    func publishAndRecord(_ attempts: [TaskStore.QueuedAttempt], started: ContinuousClock.Instant) async {
        let confirmed = await context.publisher.publish(attempts)
        do {
            try await store.markPublished(confirmed)
        } catch {
            logger.warning("cannot record \(confirmed.count) broker confirms (they will be published again): \(error)")
        }
        context.metrics.dispatched.increment(by: Int64(attempts.count))
        context.metrics.unconfirmed.increment(by: Int64(attempts.count - confirmed.count))
        context.metrics.dispatchRound.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
    }

    func republish(olderThan age: Duration) async throws {
        let attempts = try await store.unpublished(olderThan: age)
        guard !attempts.isEmpty else { return }
        let confirmed = await context.publisher.publish(attempts)
        try await store.markPublished(confirmed)
        logger.info("published \(confirmed.count) of \(attempts.count) attempts again that had no broker confirm")
    }
}

/// How many rounds' publishes are in flight, and a wait for room below the limit.
final class Publishing: Sendable {
    private let count = Mutex(0)
    private let bell = Doorbell()
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func begin() { count.withLock { $0 += 1 } }

    func end() {
        count.withLock { $0 -= 1 }
        bell.ring()
    }

    func waitForRoom() async {
        // A ring from `end` is kept if it comes before the wait: no room is missed.
        while count.withLock({ $0 >= limit }) && !Task.isCancelled { await bell.wait() }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
