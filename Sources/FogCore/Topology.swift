/// Names of the RabbitMQ topology (DESIGN.md §4), shared by every process.
public enum Topology {
    public static let vhost = "fog"
    /// Direct exchange: routing key `<node>.<class>` to queue `fog.node.<node>.<class>`.
    public static let tasksExchange = "fog.tasks"
    /// Topic exchange of fog node events, and the quorum queue the schedulers consume.
    public static let eventsExchange = "fog.events"
    public static let eventsQueue = "fog.events"
    /// Fanout control plane: each process binds an exclusive, auto-delete queue.
    public static let clusterExchange = "fog.cluster"
    /// Messages that cannot be read or that hit the delivery limit.
    public static let deadLetterExchange = "fog.dlx"
    public static let deadLetterQueue = "fog.dead"
    /// The header that carries why a message was dead-lettered.
    public static let deadReasonHeader = "x-fog-reason"
    /// How many times a node queue redelivers a message before it goes to `fog.dead`.
    public static let nodeQueueDeliveryLimit = 20

    /// The queue that holds class `priority` work for node `nodeID`.
    public static func nodeQueue(_ nodeID: NodeID, _ priority: PriorityClass) -> String {
        "fog.node.\(nodeID.rawValue).\(priority.rawValue)"
    }

    /// The routing key of that queue on `fog.tasks`.
    public static func nodeRoutingKey(_ nodeID: NodeID, _ priority: PriorityClass) -> String {
        "\(nodeID.rawValue).\(priority.rawValue)"
    }
}

/// A fog node's id: 1-64 characters of letters, digits, `-` and `_`, so that it is safe in
/// queue names, routing keys and Redis keys alike.
public struct NodeID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init?(rawValue: String) {
        let allowed = rawValue.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
        guard (1...64).contains(rawValue.utf8.count), allowed else { return nil }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}
