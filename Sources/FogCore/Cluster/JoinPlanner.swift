/// Decides how a RabbitMQ node gets into the master's cluster, from the two nodes' own views.
/// Pure: `clusterctl` observes, asks, then carries the plan out with `rabbitmqctl`.
///
/// The rule that matters most: a node is reset only when that loses nothing, that is when it
/// holds no messages that are not replicated elsewhere.
public enum JoinPlanner {
    public enum Plan: Equatable, Sendable {
        /// Both views agree that the node is a member: nothing to do.
        case alreadyMember
        /// A fresh node the cluster does not know: stop_app, reset, join_cluster, start_app.
        case join
        /// The cluster still lists the node, but the node's data was wiped: forget it on the
        /// master first, then join, then grow the quorum queues back onto it.
        case forgetThenJoin
        /// The cluster forgot the node while it was down, but the node remembers the cluster:
        /// reset it (its quorum replicas were dropped), join, grow.
        case resetThenRejoin
        /// The node would need a reset but holds data that exists nowhere else, or the views
        /// contradict each other: leave it alone and tell the operator.
        case refuse(reason: String)
    }

    /// - Parameters:
    ///   - node: the local node.
    ///   - local: the local node's view.
    ///   - master: the node named master in Redis.
    ///   - masterView: the master's view.
    ///   - unreplicatedMessages: messages in queues whose only replica is on the local node.
    public static func plan(
        node: String, local: RabbitClusterStatus, master: String, masterView: RabbitClusterStatus, unreplicatedMessages: Int
    ) -> Plan {
        let clusterKnowsNode = masterView.nodes.contains(node)
        let nodeKnowsCluster = local.nodes.contains(master)
        switch (clusterKnowsNode, nodeKnowsCluster) {
        case (true, true):
            return .alreadyMember
        case (true, false):
            guard local.isStandalone(node) else {
                return .refuse(
                    reason:
                        "\(node) belongs to another cluster (\(local.nodes.sorted().joined(separator: ", "))) while \(master)'s cluster lists it"
                )
            }
            return unreplicatedMessages > 0
                ? .refuse(reason: "\(node) lost its cluster data but holds \(unreplicatedMessages) messages of its own")
                : .forgetThenJoin
        case (false, _):
            if unreplicatedMessages > 0 {
                return .refuse(reason: "joining would reset \(node), which holds \(unreplicatedMessages) messages that exist nowhere else")
            }
            return local.isStandalone(node) ? .join : .resetThenRejoin
        }
    }

    /// Whether `node` may claim the vacant master key: only a node whose cluster holds every
    /// member that is alive in Redis, so that a fresh or wiped node never becomes the node the
    /// others would have to reset themselves to join.
    public static func mayLead(node: String, local: RabbitClusterStatus, liveMembers: Set<String>) -> Bool {
        local.runningNodes.contains(node) && liveMembers.subtracting(local.nodes).isEmpty
    }
}
