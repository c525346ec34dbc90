import AMQPClient
import BrokerTopology
import FogCore
import Foundation
import Logging
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

    /// Publishes the attempts, one message per node and class; answers the ids the broker confirmed. The rest stay
    /// unpublished in the store and are sent again, with the same ids, later. An attempt for a
    /// node whose id cannot name a queue (which placement never picks) is not sent at all.
    public func publish(_ attempts: [TaskStore.QueuedAttempt]) async -> [UUID] {
        let routable = attempts.compactMap { attempt in NodeID(rawValue: attempt.message.node).map { (attempt, $0) } }
        if routable.count < attempts.count {
            logger.error("\(attempts.count - routable.count) attempts name a node id that cannot name a queue: not published")
        }
        guard !routable.isEmpty else { return [] }
        await ensureQueues(of: Set(routable.map(\.1.rawValue)))
        // One message per node and class (a `TaskBatch` of up to `maxTasks` when there are more).
        var groups: [String: (node: NodeID, priority: PriorityClass, attempts: [TaskStore.QueuedAttempt])] = [:]
        var order: [String] = []
        for (attempt, node) in routable {
            let key = Topology.nodeRoutingKey(node, attempt.priority)
            if groups[key] == nil { order.append(key) }
            groups[key, default: (node, attempt.priority, [])].attempts.append(attempt)
        }
        var chunks: [(routingKey: String, attempts: [TaskStore.QueuedAttempt])] = []
        for key in order {
            guard let group = groups[key] else { continue }
            for start in stride(from: 0, to: group.attempts.count, by: TaskBatch.maxTasks) {
                chunks.append((key, Array(group.attempts[start..<min(start + TaskBatch.maxTasks, group.attempts.count)])))
            }
        }
        let messages = chunks.map { routingKey, attempts in
            var properties = AMQPProperties.json
            properties.messageID = attempts[0].message.attemptID.uuidString.lowercased()
            guard attempts.count > 1 else {
                return OutgoingMessage(
                    exchange: Topology.tasksExchange, routingKey: routingKey,
                    body: WireFormat.encode(attempts[0].message), properties: properties)
            }
            properties.type = TaskBatch.messageType
            return OutgoingMessage(
                exchange: Topology.tasksExchange, routingKey: routingKey,
                body: WireFormat.encode(TaskBatch(tasks: attempts.map(\.message))), properties: properties)
        }
        let results = await connection.publish(messages)
        var confirmed: [UUID] = []
        var refused: [String] = []
        for (chunk, result) in zip(chunks, results) {
            let first = chunk.attempts[0].message
            let what = chunk.attempts.count > 1 ? "\(first.attemptID) and \(chunk.attempts.count - 1) more" : "\(first.attemptID)"
            switch result {
            case .success(.ack): confirmed += chunk.attempts.map(\.message.attemptID)
            case .success(let outcome):
                refused.append("\(what): \(outcome)")
                // Unroutable: the node's queues are gone (deleted by an operator?); declare them again.
                declaredNodes.withLock { _ = $0.remove(first.node) }
            case .failure(let error): refused.append("\(what): \(error)")
            }
        }
        if results.contains(where: { if case .success(.nack) = $0 { true } else { false } }) {
            await connection.reconnect(because: "the broker nacked attempts")
        }
        if !refused.isEmpty {
            logger.warning(
                "\(refused.count) of \(messages.count) publishes (\(attempts.count) attempts) unconfirmed; they will be retried",
                metadata: ["first": "\(refused[0])"])
        }
        return confirmed
    }

    /// Declares the class queues of these nodes, once each: fog nodes may only consume their
    /// queues, never declare or bind them (binding needs read access to `fog.tasks`, which would
    /// let a node bind its queue to another node's routing keys), so the scheduler does it for
    /// every node that heartbeats.
    public func ensureQueues(of nodes: Set<String>) async {
        for node in nodes.sorted() where !declaredNodes.withLock({ $0.contains(node) }) {
            await declareQueues(of: node)
        }
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
