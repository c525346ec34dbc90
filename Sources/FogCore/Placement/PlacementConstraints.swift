/// The hard constraints that no policy may break: room (capacity minus what is reserved),
/// labels, zone and the maximum latency from the task's origin.
public enum PlacementConstraints {
    /// Why no node is feasible, as a person reads it on a pending task.
    public struct NoFeasibleNode: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public static func feasible(for task: TaskSpec, among nodes: [NodeCandidate]) -> Result<[NodeCandidate], NoFeasibleNode> {
        if nodes.isEmpty { return .failure(NoFeasibleNode("no live fog node")) }
        var remaining = nodes
        let c = task.constraints
        if let zone = c.zone {
            remaining = remaining.filter { $0.info.zone == zone }
            if remaining.isEmpty { return .failure(NoFeasibleNode("no live node in zone \(zone)")) }
        }
        if !c.labels.isEmpty {
            remaining = remaining.filter { node in c.labels.allSatisfy { node.info.labels[$0.key] == $0.value } }
            if remaining.isEmpty {
                let wanted = c.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                return .failure(NoFeasibleNode("no live node has labels \(wanted)"))
            }
        }
        if let limit = c.maxLatencyMS, let origin = c.origin {
            remaining = remaining.filter { ($0.info.latency(from: origin) ?? .infinity) <= Double(limit) }
            if remaining.isEmpty { return .failure(NoFeasibleNode("no live node within \(limit) ms of zone \(origin)")) }
        }
        let withRoom = remaining.filter { $0.free.fits(task.resources) }
        if withRoom.isEmpty {
            let r = task.resources
            let best = remaining.max { $0.free.cpuMillicores < $1.free.cpuMillicores }!
            return .failure(
                NoFeasibleNode(
                    "no node has room for \(r.cpuMillicores)m CPU / \(r.memoryMB) MB / \(r.storageMB) MB storage now "
                        + "(most free CPU: \(best.free.cpuMillicores)m / \(best.free.memoryMB) MB on \(best.id))"))
        }
        return .success(withRoom)
    }

    /// Why `resources` would not fit even an empty node among `nodes` (every registered node,
    /// live or not), or nil when one could take it. With no node registered nothing is known,
    /// and the task waits.
    public static func neverFits(_ resources: Resources, nodes: [FogNodeInfo]) -> [String: String] {
        guard !nodes.isEmpty, !nodes.contains(where: { $0.capacity.fits(resources) }) else { return [:] }
        var fields: [String: String] = [:]
        let cpu = nodes.map(\.capacity.cpuMillicores).max()!
        let memory = nodes.map(\.capacity.memoryMB).max()!
        let storage = nodes.map(\.capacity.storageMB).max()!
        if resources.cpuMillicores > cpu { fields["resources.cpu_millicores"] = "more than the largest node has (\(cpu))" }
        if resources.memoryMB > memory { fields["resources.memory_mb"] = "more than the largest node has (\(memory))" }
        if resources.storageMB > storage { fields["resources.storage_mb"] = "more than the largest node has (\(storage))" }
        if fields.isEmpty { fields["resources"] = "no single registered node has all of these resources" }
        return fields
    }
}

extension PlacementConstraints {
    /// Why no live node in `nodes` can finish `task` before its deadline (network both ways
    /// plus its expected run time at the node's speed, on an empty node), or nil when one can,
    /// when the task has no deadline, or when no live node fits it at all (it then waits).
    public static func deadlineRisk(for task: TaskSpec, nodes: [FogNodeInfo], at now: Double) -> String? {
        guard let deadline = task.deadlineSeconds else { return nil }
        let empty = nodes.map { NodeCandidate(info: $0) }
        guard case .success(let feasible) = feasible(for: task, among: empty) else { return nil }
        let estimate = task.estimatedSeconds ?? 0
        let fastest = feasible.map { $0.expectedCompletion(of: task, estimate: estimate) }.min()!
        let left = deadline - now
        guard left < fastest else { return nil }
        if left <= 0 { return "the deadline had passed when the task was submitted" }
        return "the deadline is \(format(left)) s away and the fastest live node needs \(format(fastest)) s"
            + " (network both ways and expected run time)"
    }

    private static func format(_ seconds: Double) -> String {
        let rounded = (seconds * 1000).rounded() / 1000
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
