import AMQPClient
import FogCore

/// Declares the RabbitMQ topology of DESIGN.md §4. The scheduler and the fog nodes both
/// declare what they use, with the same arguments, so that either may start first.
public enum TopologyDeclarations {
    /// Exchanges, the events queue and the dead-letter queue.
    public static func declareShared(on connection: AMQPConnection) async throws {
        try await connection.declareExchange(Topology.deadLetterExchange, kind: .fanout)
        try await connection.declareQueue(Topology.deadLetterQueue, arguments: .quorumQueue())
        try await connection.bindQueue(Topology.deadLetterQueue, to: Topology.deadLetterExchange, routingKey: "")
        try await connection.declareExchange(Topology.tasksExchange, kind: .direct)
        try await connection.declareExchange(Topology.clusterExchange, kind: .fanout)
        try await connection.declareExchange(Topology.eventsExchange, kind: .topic)
        try await connection.declareQueue(
            Topology.eventsQueue,
            arguments: .quorumQueue(deliveryLimit: Topology.nodeQueueDeliveryLimit, deadLetterExchange: Topology.deadLetterExchange))
        try await connection.bindQueue(Topology.eventsQueue, to: Topology.eventsExchange, routingKey: "#")
    }

    /// The four class queues of one fog node, bound to `fog.tasks`.
    public static func declareNodeQueues(_ node: NodeID, on connection: AMQPConnection) async throws {
        for priority in PriorityClass.consumptionOrder {
            let queue = Topology.nodeQueue(node, priority)
            try await connection.declareQueue(queue, arguments: nodeQueueArguments)
            try await connection.bindQueue(queue, to: Topology.tasksExchange, routingKey: Topology.nodeRoutingKey(node, priority))
        }
    }

    /// Quorum, with a delivery limit: a message that keeps failing ends in `fog.dead`.
    public static var nodeQueueArguments: AMQPTable {
        .quorumQueue(deliveryLimit: Topology.nodeQueueDeliveryLimit, deadLetterExchange: Topology.deadLetterExchange)
    }

    /// Sends an unreadable message to `fog.dead` with the reason in a header; the caller then
    /// acks the original, so nothing is lost and nothing loops.
    public static func deadLetter(_ delivery: AMQPDelivery, reason: String, on connection: AMQPConnection) async throws {
        var properties = delivery.properties
        properties.headers[Topology.deadReasonHeader] = .string(String(reason.prefix(500)))
        properties.headers["x-fog-original-routing-key"] = .string(delivery.routingKey)
        let outcome = try await connection.publish(
            OutgoingMessage(
                exchange: Topology.deadLetterExchange, routingKey: delivery.routingKey, body: delivery.body,
                properties: properties))
        guard outcome.isAck else { throw AMQPError(.publishRefused, "fog.dead refused a dead letter: \(outcome)") }
    }
}
