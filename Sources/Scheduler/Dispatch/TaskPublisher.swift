import AMQPClient
import FogCore
import Foundation
import Logging
import ServiceSupport
import Synchronization

/// Publishes attempts to their node queues with confirms, many in flight at once, and
/// declares a node's queues the first time it sees the node. Also sends control messages.
public final class TaskPublisher: Sendable {
    let connection: AMQPConnection
    let logger: Logger
    private let declaredNodes = Mutex<Set<String>>([])

    public init(connection: AMQPConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Publishes each attempt; answers the ids the broker confirmed. The rest stay
    /// unpublished in the store and are sent again, with the same ids, later.
    public func publish(_ attempts: [TaskStore.QueuedAttempt]) async -> [UUID] {
        guard !attempts.isEmpty else { return [] }
        for node in Set(attempts.map(\.message.node)) where !declaredNodes.withLock({ $0.contains(node) }) {
            await declareQueues(of: node)
        }
        let messages = attempts.map { attempt in
            var properties = AMQPProperties.json
            properties.messageID = attempt.message.attemptID.uuidString.lowercased()
            let node = NodeID(rawValue: attempt.message.node)!
            return OutgoingMessage(exchange: Topology.tasksExchange, routingKey: Topology.nodeRoutingKey(node, attempt.priority),
                                   body: WireFormat.encode(attempt.message), properties: properties)
        }
        let results = await connection.publish(messages)
        var confirmed: [UUID] = []
        var refused: [String] = []
        for (attempt, result) in zip(attempts, results) {
            switch result {
            case .success(.ack): confirmed.append(attempt.message.attemptID)
            case .success(let outcome):
                refused.append("\(attempt.message.attemptID): \(outcome)")
                // Unroutable: the node's queues are gone (deleted by an operator?); declare them again.
                declaredNodes.withLock { _ = $0.remove(attempt.message.node) }
            case .failure(let error): refused.append("\(attempt.message.attemptID): \(error)")
            }
        }
        if results.contains(where: { if case .success(.nack) = $0 { true } else { false } }) {
            await connection.reconnect(because: "the broker nacked attempts")
        }
        if !refused.isEmpty {
            logger.warning("\(refused.count) of \(attempts.count) publishes unconfirmed; they will be retried", metadata: ["first": "\(refused[0])"])
        }
        return confirmed
    }

    func declareQueues(of node: String) async {
        guard let id = NodeID(rawValue: node) else { return }
        do {
            try await TopologyDeclarations.declareNodeQueues(id, on: connection)
            declaredNodes.withLock { _ = $0.insert(node) }
        } catch {
            logger.error("cannot declare the queues of node \(node): \(error)")
        }
    }

    /// Sends a control message to every process on `fog.cluster`.
    public func control(_ message: ControlMessage) async throws {
        let outcome = try await connection.publish(
            OutgoingMessage(exchange: Topology.clusterExchange, routingKey: "", body: WireFormat.encode(message), mandatory: false))
        guard outcome.isAck else { throw AMQPError(.publishRefused, "fog.cluster refused a control message: \(outcome)") }
    }
}
