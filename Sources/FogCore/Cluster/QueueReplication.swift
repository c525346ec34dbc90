/// Which running nodes quorum queues are missing. RabbitMQ places a quorum queue's members only
/// among the nodes clustered when the queue is declared, and never grows it afterwards: a queue
/// declared while the cluster was still forming keeps fewer members than the cluster has, and
/// dies with them. (A member merely stopped at the time is still given a replica: RabbitMQ 3.10,
/// measured.) A member can also be removed (`rabbitmq-queues delete_member`, a failed grow).
/// clusterctl's master grows them back.
public enum QueueReplication {
    /// One quorum queue as `rabbitmqctl list_queues name type members` reports it.
    public struct Queue: Equatable, Sendable {
        public var name: String
        public var members: [String]

        public init(name: String, members: [String]) {
            self.name = name
            self.members = members
        }
    }

    /// The running nodes that at least one queue lacks, sorted: each gets one
    /// `rabbitmq-queues grow NODE all`, which adds it to every quorum queue without it.
    public static func nodesToGrow(_ queues: [Queue], running: Set<String>) -> [String] {
        var missing: Set<String> = []
        for queue in queues {
            missing.formUnion(running.subtracting(queue.members))
        }
        return missing.sorted()
    }
}
