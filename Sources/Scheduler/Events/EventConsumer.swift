import AMQPClient
import ClientSupport
import FogCore
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import ServiceSupport
import Synchronization

/// Consumes `fog.events` (every replica does) and applies them in batches: whatever arrived
/// while the previous batch was written goes into the next transaction. A batch is acked only
/// after it is committed; while the database is away the deliveries wait unacked and the
/// batch is retried, so no event is lost. A body that cannot be read goes to `fog.dead`
/// with the reason.
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
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        while !Task.isCancelled && !inbox.isClosed {
            do {
                let consumer = try await connection.consume(queue: Topology.eventsQueue, prefetch: prefetch)
                backoff.reset()
                for try await delivery in consumer {
                    inbox.put(delivery)
                    if inbox.isClosed { break }
                }
            } catch {
                if Task.isCancelled || inbox.isClosed { return }
                logger.warning("events consumer: \(error); subscribing again")
                try? await Task.sleep(for: backoff.next())
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

    func apply(_ deliveries: [AMQPDelivery]) async {
        var events: [TaskEvent] = []
        var readable: [AMQPDelivery] = []
        for delivery in deliveries {
            do {
                events += try WireFormat.decode(EventBatch.self, from: delivery.body).events
                readable.append(delivery)
            } catch {
                metrics.deadLettered.increment()
                logger.warning("dead-lettering an unreadable event message: \(error.reason)")
                do {
                    try await TopologyDeclarations.deadLetter(delivery, reason: error.reason, on: connection)
                    try await connection.ack(delivery)
                } catch {
                    // Not dead-lettered: reject it, and the queue's own dead-letter exchange takes it.
                    try? await connection.reject(delivery, requeue: false)
                }
            }
        }
        guard !readable.isEmpty else { return }
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        var failing = false
        while !Task.isCancelled {
            do {
                let started = ContinuousClock.now
                let tally = try await store.apply(events, retry: context.configuration.retry)
                metrics.eventBatch.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
                metrics.eventsApplied.increment(by: Int64(tally.applied))
                metrics.eventsIgnored.increment(by: Int64(tally.ignored))
                metrics.eventsDuplicate.increment(by: Int64(tally.duplicates))
                if tally.ignored > 0 || tally.unknown > 0 {
                    logger.info("events: \(tally.applied) applied, \(tally.ignored) ignored as late or superseded, \(tally.unknown) for unknown attempts")
                }
                if tally.applied > 0 { context.nudge.signal() }
                if failing { logger.info("events are written again") }
                break
            } catch {
                if !failing { logger.error("cannot write events, will retry: \(error)") }
                failing = true
                try? await Task.sleep(for: backoff.next())
            }
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
}

/// Deliveries waiting to be applied: the pump puts, the writer takes all there is.
final class Inbox: Sendable {
    private let state = Mutex<(items: [AMQPDelivery], closed: Bool)>(([], false))

    func put(_ delivery: AMQPDelivery) { state.withLock { $0.items.append(delivery) } }

    func close() { state.withLock { $0.closed = true } }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Waits until something is there (checking every 10 ms); empty once closed and drained.
    func take(upTo limit: Int) async -> [AMQPDelivery] {
        while true {
            let (batch, closed) = state.withLock { state -> ([AMQPDelivery], Bool) in
                let batch = Array(state.items.prefix(limit))
                state.items.removeFirst(batch.count)
                return (batch, state.closed)
            }
            if !batch.isEmpty || closed || Task.isCancelled { return batch }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}
