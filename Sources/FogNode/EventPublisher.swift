import AMQPClient
import ClientSupport
import FogCore
import Logging

/// Publishes this node's events to `fog.events` with confirms, retrying until the broker
/// takes them: an event is never dropped while the node lives.
struct EventPublisher: Sendable {
    let connection: AMQPConnection
    let node: String
    let logger: Logger

    /// Returns once the broker confirmed the batch (or the task was cancelled).
    func publish(_ events: [TaskEvent]) async {
        let body = WireFormat.encode(EventBatch(events: events))
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        var reported = false
        var refusals = 0
        while !Task.isCancelled {
            do {
                let outcome = try await connection.publish(body, exchange: Topology.eventsExchange, routingKey: EventBatch.routingKey(node: node))
                if outcome.isAck { return }
                refusals += 1
                if refusals % 3 == 0 { await connection.reconnect(because: "fog.events keeps refusing events (\(outcome))") }
                throw AMQPError(.publishRefused, "fog.events refused an event: \(outcome)")
            } catch {
                if !reported { logger.warning("cannot publish events yet, retrying: \(error)") }
                reported = true
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}
