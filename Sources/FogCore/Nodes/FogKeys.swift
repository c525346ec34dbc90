/// The Redis keys of fog nodes and schedulers (DESIGN.md §5).
public enum FogKeys {
    /// SET of every registered fog node id.
    public static let nodes = "fog:nodes"
    /// HASH: a node's registration (`FogNodeInfo`).
    public static func node(_ id: String) -> String { "fog:node:\(id)" }
    /// STRING with TTL: a node's heartbeat, a JSON `NodeLoad`.
    public static func heartbeat(_ id: String) -> String { "fog:node:\(id):heartbeat" }
    /// STRING (SET NX PX): the instance id of the scheduler that leads.
    public static let schedulerLeader = "fog:scheduler:leader"
    /// STRING: the fencing token of the current leadership, mirrored from the database fence
    /// (which alone decides; Redis may forget it).
    public static let schedulerEpoch = "fog:scheduler:epoch"
}
