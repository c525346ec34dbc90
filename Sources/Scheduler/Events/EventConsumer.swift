import AMQPClient
import BrokerTopology
import ClientSupport
import FogCore
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import Synchronization

/// Consumes `fog.events` (every replica does) and applies them in batches: whatever arrived
/// while the previous batch was written goes into the next transaction. A batch is acked only
/// after it is committed; while the database is away the deliveries wait unacked and the
/// batch is retried, so no event is lost. A body that cannot be read goes to `fog.dead` with
/// the reason. Every event is outside input:
/// - it counts only when it names the node that sent it (the routing key `node.<id>`, which
///   the broker lets each node's user publish under only, THREATS.md); others are logged and
///   dropped, and the store ignores an event about an attempt placed on another node;
/// - it is made storable first (`TaskEvent.storable`);
/// - an event that the database still refuses is found by splitting the batch, stored in a
///   safe form (its outcome, without the values refused), or dead-lettered with the reason,
///   and the rest of the batch is applied.
public struct EventConsumer: Service {
    /// Its own connection: a consumer never shares one with the publisher.
    let connection: AMQPConnection
    let context: SchedulerContext
    var store: TaskStore { context.store }
    var metrics: SchedulerMetrics { context.metrics }
    var logger: Logger { context.logger }
    let prefetch: UInt16 = 1_000
    let maxBatch = 500

    public init(connection: AMQPConnection, context: SchedulerContext) {
        self.connection = connection
        self.context = context
    }

    public func run() async throws {
        let inbox = Inbox()
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await pump(into: inbox) }
                group.addTask { try await drain(inbox) }
                try await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            inbox.close()
        }
    }

    /// Moves deliveries from the broker into the inbox; resubscribes after a broker failure.
    func pump(into inbox: Inbox) async throws {
        var retry = RetryLog("events consumer", logger: logger)
        while !Task.isCancelled && !inbox.isClosed {
            do {
                let consumer = try await connection.consume(queue: Topology.eventsQueue, prefetch: prefetch)
                retry.succeeded()
                for try await delivery in consumer {
                    inbox.put(delivery)
                    if inbox.isClosed { break }
                }
            } catch {
                if Task.isCancelled || inbox.isClosed { return }
                await retry.failedAndWait(error)
            }
        }
    }

    /// Takes what the inbox holds, applies it in one transaction, acks it.
    func drain(_ inbox: Inbox) async throws {
        while true {
            let deliveries = await inbox.take(upTo: maxBatch)
            if deliveries.isEmpty { return }
            await apply(deliveries)
        }
    }

    /// The node a delivery comes from: the routing key `node.<id>` it was published with.
    static func sender(of delivery: AMQPDelivery) -> String? {
        guard delivery.routingKey.hasPrefix("node.") else { return nil }
        return NodeID(rawValue: String(delivery.routingKey.dropFirst("node.".count)))?.rawValue
    }

    func apply(_ deliveries: [AMQPDelivery]) async {
        var events: [TaskEvent] = []
        var readable: [AMQPDelivery] = []
        var wrongSender: [String] = []
        var repairs: [String] = []
        let now = Date().timeIntervalSince1970
        for delivery in deliveries {
            do {
                let batch = try WireFormat.decode(EventBatch.self, from: delivery.body)
                readable.append(delivery)
                let sender = Self.sender(of: delivery)
                for event in batch.events {
                    guard event.node == sender else {
                        wrongSender.append(
                            "\(event.attemptID) claims node \(event.node.prefix(80)), sent as \(delivery.routingKey.prefix(80))")
                        continue
                    }
                    let (stored, repaired) = event.storable(now: now)
                    if !repaired.isEmpty { repairs.append("\(event.attemptID): \(repaired.joined(separator: ", "))") }
                    events.append(stored)
                }
            } catch {
                await deadLetter(delivery, reason: error.reason)
            }
        }
        if !wrongSender.isEmpty {
            metrics.eventsForged.increment(by: Int64(wrongSender.count))
            logger.warning("ignored \(wrongSender.count) events not sent by the node they name", metadata: ["first": "\(wrongSender[0])"])
        }
        if !repairs.isEmpty {
            metrics.eventsRepaired.increment(by: Int64(repairs.count))
            logger.warning(
                "\(repairs.count) events held values that cannot be stored as sent; stored repaired", metadata: ["first": "\(repairs[0])"])
        }
        guard !readable.isEmpty else { return }
        let written = await RetryLog.retrying("cannot write events", logger: logger, level: .error) {
            let started = ContinuousClock.now
            let result = try await applyIsolating(events, now: now)
            metrics.eventBatch.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            return result
        }
        // Cancelled before the events were written: unacked, the broker delivers them again.
        guard let written else { return }
        record(written.tally)
        for (event, reason) in written.refused {
            await deadLetter(event, reason: reason)
        }
        for delivery in readable {
            do {
                try await connection.ack(delivery)
            } catch {
                // The channel is gone: the broker redelivers, and the store sees duplicates.
                logger.warning("ack of an applied event failed (it will come again, as a duplicate): \(error)")
                break
            }
        }
    }

    private func record(_ tally: TaskStore.Tally) {
        metrics.eventsApplied.increment(by: Int64(tally.applied))
        metrics.eventsIgnored.increment(by: Int64(tally.ignored))
        metrics.eventsDuplicate.increment(by: Int64(tally.duplicates))
        if tally.ignored > 0 || tally.unknown > 0 {
            logger.info(
                "events: \(tally.applied) applied, \(tally.ignored) ignored as late, superseded or from another node, \(tally.unknown) for unknown attempts"
            )
        }
        if tally.applied > 0 { context.nudge.signal() }
    }

    /// What applying a batch came to: the tally, and the events no form of which the database
    /// took, with its reason.
    struct Applied {
        var tally = TaskStore.Tally()
        var refused: [(event: TaskEvent, reason: String)] = []

        mutating func add(_ other: Applied) {
            tally.applied += other.tally.applied
            tally.ignored += other.tally.ignored
            tally.duplicates += other.tally.duplicates
            tally.unknown += other.tally.unknown
            refused += other.refused
        }
    }

    /// Applies `events` in one transaction; when the database refuses the batch for its data
    /// (not for being away), applies each half on its own, down to single events, so that k
    /// refused events cost about k·log(n) transactions and the rest are all applied. A single
    /// refused event is tried once more in its safe form. A database that goes away meanwhile
    /// throws, and the caller retries the whole batch: applying is idempotent.
    func applyIsolating(_ events: [TaskEvent], now: Double) async throws -> Applied {
        guard !events.isEmpty else { return Applied() }
        do {
            return Applied(tally: try await store.apply(events, retry: context.configuration.retry))
        } catch let error where !Self.refusesData(error) {
            throw error
        } catch {
            guard events.count > 1 else {
                let reason = "\(error)"
                let safe = events[0].safeForm(because: reason, now: now)
                do {
                    let applied = Applied(tally: try await store.apply([safe], retry: context.configuration.retry))
                    logger.warning(
                        "event for attempt \(events[0].attemptID) refused by the database (\(reason)); stored without its output and values"
                    )
                    return applied
                } catch let error where !Self.refusesData(error) {
                    throw error
                } catch {
                    return Applied(refused: [(events[0], "\(error)")])
                }
            }
            let middle = events.count / 2
            var result = try await applyIsolating(Array(events[..<middle]), now: now)
            result.add(try await applyIsolating(Array(events[middle...]), now: now))
            return result
        }
    }

    /// True when the database refused the statement for what it held (a value, a constraint),
    /// so that the same events would be refused again; false when it was away or busy.
    static func refusesData(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError else { return false }
        switch error.code {
        case .decoding: return true
        case .server:
            let transient = ["08", "40", "53", "57", "58", "XX"]
            return !transient.contains { error.sqlState?.hasPrefix($0) ?? true }
        default: return false
        }
    }

    /// A delivery that cannot be read: to `fog.dead` with the reason, then acked.
    func deadLetter(_ delivery: AMQPDelivery, reason: String) async {
        metrics.deadLettered.increment()
        logger.warning("dead-lettering an unreadable event message: \(reason)")
        do {
            try await TopologyDeclarations.deadLetter(delivery, reason: reason, on: connection)
            try await connection.ack(delivery)
        } catch {
            // Not dead-lettered: reject it, and the queue's own dead-letter exchange takes it.
            try? await connection.reject(delivery, requeue: false)
        }
    }

    /// One event that no form of which the database took: to `fog.dead` on its own, with the reason.
    func deadLetter(_ event: TaskEvent, reason: String) async {
        metrics.deadLettered.increment()
        logger.error("dead-lettering the event for attempt \(event.attemptID): the database refused it: \(reason)")
        var properties = AMQPProperties.json
        properties.headers[Topology.deadReasonHeader] = .string(String(reason.prefix(500)))
        let message = OutgoingMessage(
            exchange: Topology.deadLetterExchange, routingKey: EventBatch.routingKey(node: event.node),
            body: WireFormat.encode(EventBatch(events: [event])), properties: properties)
        if (try? await connection.publish(message))?.isAck != true {
            logger.error(
                "the event for attempt \(event.attemptID) could not be dead-lettered either; it is dropped (its attempt is covered by the backstops)"
            )
        }
    }
}

extension TaskEvent {
    /// This event without anything but what the lifecycle needs: for an event whose full form
    /// the database refused, so that its outcome still counts.
    func safeForm(because reason: String, now: Double) -> TaskEvent {
        TaskEvent(
            taskID: taskID, attemptID: attemptID, node: node, kind: kind, at: now, outcome: outcome,
            reason: StorableText.make("the scheduler could not store this report as sent (\(reason.prefix(300)))", maxBytes: 500).text,
            epoch: epoch)
    }
}

/// Deliveries waiting to be applied: the pump puts, the writer takes all there is.
final class Inbox: Sendable {
    private let state = Mutex<(items: [AMQPDelivery], closed: Bool)>(([], false))
    private let bell = Doorbell()

    func put(_ delivery: AMQPDelivery) {
        state.withLock { $0.items.append(delivery) }
        bell.ring()
    }

    func close() {
        state.withLock { $0.closed = true }
        bell.ring()
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Waits until something is there (woken by `put`: it polled every 10 ms before, 5 ms of
    /// every outcome's latency on average); empty once closed and drained.
    func take(upTo limit: Int) async -> [AMQPDelivery] {
        while true {
            let (batch, closed) = state.withLock { state -> ([AMQPDelivery], Bool) in
                let batch = Array(state.items.prefix(limit))
                state.items.removeFirst(batch.count)
                return (batch, state.closed)
            }
            if !batch.isEmpty || closed || Task.isCancelled { return batch }
            await bell.wait()
        }
    }
}
