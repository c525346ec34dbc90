import FogCore
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle

/// The leader's watch over fog nodes. A node whose heartbeat key expired is lost: its queued
/// and running attempts end as `lost`, their tasks are placed again elsewhere, and the
/// messages left in its queues are handed over (purged: the store holds every task, so the
/// new placements carry them). A node that heartbeats again is taken back; whatever its stale
/// attempts report is ignored. A node that restarted within its heartbeat TTL (it registers
/// with a later start time) loses the attempts that ran in its previous process. It also runs
/// the two backstops: running attempts past their timeout, and queued attempts whose message
/// never reached their node. One node that cannot be handled (an error on its rows) is logged
/// and skipped; the others are handled in the same round.
public struct FailureDetector: Service {
    let context: SchedulerContext
    var store: TaskStore { context.store }
    var configuration: SchedulerConfiguration { context.configuration }
    var leadership: Leadership { context.leadership }
    var metrics: SchedulerMetrics { context.metrics }
    var logger: Logger { context.logger }

    public init(context: SchedulerContext) { self.context = context }

    public func run() async throws {
        var lost: Set<String> = []
        var incarnations: [String: Double] = [:]
        var lastBackstop = ContinuousClock.now
        var failure: String?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            metrics.isLeader.set(to: leadership.epoch == nil ? 0.0 : 1.0)
            if let epoch = leadership.epoch {
                do {
                    try await check(epoch: epoch, lost: &lost, incarnations: &incarnations)
                    if ContinuousClock.now - lastBackstop >= .seconds(5) {
                        try await backstop(epoch: epoch)
                        lastBackstop = .now
                    }
                    failure = nil
                } catch let stale as StaleLeader {
                    leadership.resign(stale, logger: logger)
                } catch {
                    let text = "\(error)"
                    if failure != text { logger.error("failure detector paused: \(text)") }
                    failure = text
                }
            } else {
                incarnations = [:]  // a new leadership looks at every node's start time again
            }
            try? await Task.sleep(for: configuration.failureCheckInterval)
        }
    }

    func check(epoch: Int, lost: inout Set<String>, incarnations: inout [String: Double]) async throws {
        let entries = try await context.directory.entries().filter(\.hasValidID)
        // Right after Redis came back, heartbeats may be missing only because it restarted empty.
        guard context.directory.reachableFor(configuration.nodeHeartbeatTTL) else { return }
        let alive = Set(entries.filter(\.alive).map(\.id))
        let watched = Set(entries.map(\.id)).union(try await store.nodesWithActiveAttempts())
        for node in watched.subtracting(alive).sorted() {
            try await isolated(node) {
                let takenBack = try await store.takeBackAttempts(onLostNode: node, epoch: epoch, retry: configuration.retry)
                guard takenBack > 0 || !lost.contains(node) else { return }
                let handedOver = await handOverQueues(of: node)
                if !lost.contains(node) { metrics.nodesLost.increment() }
                metrics.attemptsTakenBack.increment(by: Int64(takenBack))
                logger.warning(
                    "fog node \(node) is lost: \(takenBack) attempts to place again, \(handedOver) messages handed over from its queues")
                lost.insert(node)
                if takenBack > 0 { context.nudge.signal() }
            }
        }
        for node in lost.intersection(alive).sorted() {
            logger.notice("fog node \(node) heartbeats again: taking work")
            lost.remove(node)
        }
        // Each start time once (and each node once per leadership): one query, not one a tick.
        for entry in entries where entry.alive {
            guard let startedAt = entry.info?.startedAt, startedAt > 0, incarnations[entry.id] != startedAt else { continue }
            try await isolated(entry.id) {
                // Nodes of version 2 on drop the messages of an earlier life (TaskMessage.nodeStartedAt).
                let dropsOldLives = (Int(entry.info?.version ?? "") ?? 0) >= 2
                let takenBack = try await store.takeBackAttempts(
                    onRestartedNode: entry.id, startedBefore: Date(timeIntervalSince1970: startedAt), queuedToo: dropsOldLives,
                    epoch: epoch,
                    retry: configuration.retry)
                incarnations[entry.id] = startedAt
                guard takenBack > 0 else { return }
                metrics.attemptsTakenBack.increment(by: Int64(takenBack))
                logger.warning("fog node \(entry.id) restarted: \(takenBack) attempts of its previous process to place again")
                context.nudge.signal()
            }
        }
    }

    /// Runs one node's part of a round: a stale epoch ends the round (the caller resigns), a
    /// database that is away pauses it, and any other error is logged for that node alone.
    private func isolated(_ node: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let stale as StaleLeader {
            throw stale
        } catch let error as PostgresError where error.isConnectionError || error.code == .poolTimeout {
            throw error
        } catch {
            logger.error("failure detector: fog node \(node.prefix(80)) skipped this round: \(error)")
        }
    }

    /// Empties a lost node's queues; answers how many messages they held.
    func handOverQueues(of node: String) async -> Int {
        guard let id = NodeID(rawValue: node) else { return 0 }
        var total = 0
        for priority in PriorityClass.consumptionOrder {
            total += (try? await context.publisher.connection.purgeQueue(Topology.nodeQueue(id, priority))) ?? 0
        }
        return total
    }

    func backstop(epoch: Int) async throws {
        let overdue = try await store.endOverdueAttempts(epoch: epoch, grace: configuration.timeoutGrace, retry: configuration.retry)
        for attempt in overdue {
            logger.warning(
                "attempt \(attempt.attempt) of task \(attempt.task) on \(attempt.node) ran past its timeout: ended, and its node told to stop it"
            )
        }
        let stuck = try await store.endNeverStartedAttempts(epoch: epoch, bound: configuration.queuedTimeout, retry: configuration.retry)
        if !stuck.isEmpty {
            metrics.attemptsTakenBack.increment(by: Int64(stuck.count))
            logger.warning(
                "\(stuck.count) queued attempts were not started within \(configuration.queuedTimeout) of their dispatch (their messages are gone): placed again",
                metadata: ["first": "\(stuck[0].attempt) on \(stuck[0].node)"])
        }
        // Their nodes drop them if they still hold them (a message in a buffer, a late delivery).
        for attempt in overdue + stuck {
            try? await context.publisher.control(
                ControlMessage(kind: .cancel, node: attempt.node, taskID: attempt.task, attemptID: attempt.attempt))
        }
        if !overdue.isEmpty || !stuck.isEmpty { context.nudge.signal() }
    }
}
