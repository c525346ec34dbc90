import AMQPClient
import ClientSupport
import FogCore
import Logging

/// Publishes this node's events to `fog.events` with confirms, retrying until the broker
/// takes them: an event is never dropped while the node lives. Events that come while a
/// publish is in flight go out together in the next message (batched when many attempts end
/// at once), in the order they were sent; the events of one `send` always share a message.
/// `send` returns once its events are confirmed.
actor EventPublisher {
    let connection: AMQPConnection
    let node: String
    let logger: Logger
    /// Events per message, unless one `send` brings more.
    static let maxBatch = 200
    private var waiting: [(events: [TaskEvent], confirmed: CheckedContinuation<Void, Never>)] = []
    private var flushing = false

    init(connection: AMQPConnection, node: String, logger: Logger) {
        self.connection = connection
        self.node = node
        self.logger = logger
    }

    func send(_ events: TaskEvent...) async {
        await withCheckedContinuation { continuation in
            waiting.append((events, continuation))
            if !flushing {
                flushing = true
                Task { await flush() }
            }
        }
    }

    private func flush() async {
        while !waiting.isEmpty {
            var count = 0
            var total = 0
            for entry in waiting {
                guard count == 0 || total + entry.events.count <= Self.maxBatch else { break }
                count += 1
                total += entry.events.count
            }
            let batch = Array(waiting.prefix(count))
            waiting.removeFirst(count)
            await publish(batch.flatMap(\.events))
            for entry in batch { entry.confirmed.resume() }
        }
        flushing = false
    }

    /// Returns once the broker confirmed the batch (or the task was cancelled).
    private func publish(_ events: [TaskEvent]) async {
        let body = WireFormat.encode(EventBatch(events: events))
        var retry = RetryLog(
            "cannot publish events yet", logger: logger, backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(5)))
        var refusals = 0
        while !Task.isCancelled {
            do {
                let outcome = try await connection.publish(
                    body, exchange: Topology.eventsExchange, routingKey: EventBatch.routingKey(node: node))
                if outcome.isAck {
                    retry.succeeded()
                    return
                }
                refusals += 1
                if refusals % 3 == 0 { await connection.reconnect(because: "fog.events keeps refusing events (\(outcome))") }
                throw AMQPError(.publishRefused, "fog.events refused an event: \(outcome)")
            } catch {
                await retry.failedAndWait(error)
            }
        }
    }
}
