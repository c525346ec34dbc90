import FogCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Wakes the dispatcher early when this replica accepted new tasks.
public final class DispatchNudge: Sendable {
    private let pending = Mutex(false)

    public init() {}

    public func signal() { pending.withLock { $0 = true } }

    /// Returns after `limit`, or soon after a signal (checked every 20 ms: cheap, and
    /// simpler than racing a continuation against a timer).
    func wait(upTo limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline && !Task.isCancelled {
            if pending.withLock({ flag in defer { flag = false }; return flag }) { return }
            try? await Task.sleep(for: min(.milliseconds(20), deadline - ContinuousClock.now))
        }
    }
}

/// The leader's dispatch loop (DESIGN.md §3): takes pending tasks in order, places each on a
/// live node with room, writes the attempts under the leader fence, publishes them with
/// confirms, and records which were confirmed. Attempts left unconfirmed are published
/// again, with the same ids, after `republishAfter`, and at once by a new leader.
public struct Dispatcher: Service {
    let context: SchedulerContext
    var store: TaskStore { context.store }
    var configuration: SchedulerConfiguration { context.configuration }
    var leadership: Leadership { context.leadership }
    var logger: Logger { context.logger }

    public init(context: SchedulerContext) { self.context = context }

    public func run() async throws {
        let policy = PlacementPolicies.make(configuration.placementPolicy, weights: configuration.smartWeights) ?? SmartPolicy()
        // The policy's state (a round-robin position) and the affinity rate buckets live as
        // long as this replica leads; a new leader starts them afresh.
        var placement = BatchPlacement(policy: policy, candidates: [], limiter: configuration.affinityLimiter)
        var sweptEpoch: Int?
        var lastSweep = ContinuousClock.now
        var failure: String?
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
                let placed = try await round(epoch: epoch, placement: &placement)
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

    /// One dispatch transaction and its publishes; answers how many tasks it placed.
    func round(epoch: Int, placement: inout BatchPlacement) async throws -> Int {
        let started = ContinuousClock.now
        let nodes = try await context.directory.liveNodes()
        await context.publisher.ensureQueues(of: Set(nodes.map(\.info.id)))
        let reservations = try await store.reservations()
        placement.candidates = nodes.sorted { ($0.info.startedAt, $0.info.id) < ($1.info.startedAt, $1.info.id) }
            .enumerated().map { order, node in
                NodeCandidate(info: node.info, reserved: reservations[node.info.id]?.resources ?? .zero,
                              active: reservations[node.info.id]?.active ?? 0, order: order, queued: node.load?.queued ?? 0)
            }
        placement.activeByKey = placement.limiter.maxActive == nil ? [:] : try await store.activeByAffinityKey()
        let (attempts, planner) = try await store.dispatch(
            epoch: epoch, limit: configuration.dispatchBatch,
            planner: PolicyPlanner(placement: placement, now: Date().timeIntervalSince1970))
        placement = planner.placement
        guard !attempts.isEmpty else { return 0 }
        let confirmed = await context.publisher.publish(attempts)
        try await store.markPublished(confirmed)
        context.metrics.dispatched.increment(by: Int64(attempts.count))
        context.metrics.unconfirmed.increment(by: Int64(attempts.count - confirmed.count))
        context.metrics.dispatchRound.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        return attempts.count
    }

    func republish(olderThan age: Duration) async throws {
        let attempts = try await store.unpublished(olderThan: age)
        guard !attempts.isEmpty else { return }
        let confirmed = await context.publisher.publish(attempts)
        try await store.markPublished(confirmed)
        logger.info("published \(confirmed.count) of \(attempts.count) attempts again that had no broker confirm")
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
