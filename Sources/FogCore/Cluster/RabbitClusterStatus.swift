import Foundation

/// One RabbitMQ node's view of its cluster, from `rabbitmqctl cluster_status --formatter json`.
public struct RabbitClusterStatus: Sendable, Equatable {
    /// Every node that belongs to the cluster, running or not (`disk_nodes` and `ram_nodes`).
    public var nodes: Set<String>
    /// The nodes running now.
    public var runningNodes: Set<String>
    /// Nodes that reported a network partition.
    public var partitionedNodes: Set<String>

    public init(nodes: Set<String>, runningNodes: Set<String>, partitionedNodes: Set<String> = []) {
        self.nodes = nodes
        self.runningNodes = runningNodes
        self.partitionedNodes = partitionedNodes
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "cannot read rabbitmqctl cluster_status output: \(reason)" }
    }

    public init(json: String) throws {
        guard let data = json.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw ParseError(reason: "not a JSON object") }
        guard let disk = object["disk_nodes"] as? [String] else { throw ParseError(reason: "no disk_nodes") }
        let ram = object["ram_nodes"] as? [String] ?? []
        nodes = Set(disk + ram)
        runningNodes = Set(object["running_nodes"] as? [String] ?? [])
        let partitions = object["partitions"] as? [String: Any] ?? [:]
        partitionedNodes = Set(partitions.filter { !(($0.value as? [Any])?.isEmpty ?? true) }.keys)
    }

    /// True when `node` knows of no other node: a fresh or wiped node.
    public func isStandalone(_ node: String) -> Bool { nodes.subtracting([node]).isEmpty }
}
