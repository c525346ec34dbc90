/// The Redis keys of the RabbitMQ cluster's membership (the reference deployment's names,
/// plus the fencing epoch and the join lock).
public enum ClusterKeys {
    /// SET of node names (`rmq1@localhost`, `rabbit@rabbitmq1`).
    public static let members = "rabbitmq:cluster:members"
    /// STRING: the elected master's node name, with an expiry renewed by its owner.
    public static let master = "rabbitmq:cluster:master"
    /// INCR on every new master: a fencing token that only grows.
    public static let epoch = "rabbitmq:cluster:epoch"
    /// STRING held while one node joins, so that nodes starting together join one by one.
    public static let joinLock = "rabbitmq:cluster:join-lock"

    /// STRING: the node's last heartbeat as Unix seconds, with a TTL.
    public static func heartbeat(_ node: String) -> String { "rabbitmq:node:\(node):heartbeat" }
}
