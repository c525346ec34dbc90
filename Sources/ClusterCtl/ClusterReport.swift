import FogCore
import Foundation
import RedisClient

/// What Redis and RabbitMQ each say about the cluster, side by side, with every disagreement
/// named: the body of `clusterctl status` and `clusterctl health`.
public struct ClusterReport: Codable, Sendable {
    public struct Member: Codable, Sendable {
        public var node: String
        public var inRedis: Bool
        /// Seconds since its last heartbeat; nil when the heartbeat key is gone.
        public var heartbeatAge: Int?
        public var inRabbitMQCluster: Bool
        public var running: Bool
    }

    public struct Check: Codable, Sendable {
        public var ok: Bool
        public var name: String
        public var detail: String
    }

    public var master: String?
    public var epoch: Int?
    public var members: [Member] = []
    /// The node RabbitMQ's view was read from, and that view.
    public var viewFrom: String?
    public var rabbitNodes: [String] = []
    public var rabbitRunning: [String] = []
    public var checks: [Check] = []

    public var healthy: Bool { checks.allSatisfy(\.ok) }

    /// Reads Redis, then RabbitMQ's view from the first of `nodes` that answers.
    public static func gather(redis: RedisConnection, rabbit: any RabbitMQControl, nodes: [String], heartbeatTTL: Duration) async
        -> ClusterReport
    {
        var report = ClusterReport()
        var redisMembers: Set<String> = []
        do {
            report.master = try await redis.get(ClusterKeys.master)
            report.epoch = try await redis.get(ClusterKeys.epoch).flatMap { Int($0) }
            redisMembers = try await redis.setMembers(ClusterKeys.members)
            report.checks.append(Check(ok: true, name: "redis", detail: "reachable, \(redisMembers.count) members registered"))
        } catch {
            report.checks.append(Check(ok: false, name: "redis", detail: "unreachable: \(error)"))
        }

        var status: RabbitClusterStatus?
        for node in nodes + redisMembers.sorted() where status == nil {
            if let view = try? await rabbit.clusterStatus(node) {
                status = view
                report.viewFrom = node
            }
        }
        if let status {
            report.rabbitNodes = status.nodes.sorted()
            report.rabbitRunning = status.runningNodes.sorted()
            let down = status.nodes.subtracting(status.runningNodes).sorted()
            report.checks.append(
                Check(
                    ok: down.isEmpty, name: "rabbitmq",
                    detail: "\(status.runningNodes.count)/\(status.nodes.count) nodes running"
                        + (down.isEmpty ? "" : ", down: \(down.joined(separator: ", "))")))
            report.checks.append(
                Check(
                    ok: status.partitionedNodes.isEmpty, name: "partitions",
                    detail: status.partitionedNodes.isEmpty
                        ? "none" : "reported by \(status.partitionedNodes.sorted().joined(separator: ", "))"))
        } else {
            report.checks.append(
                Check(
                    ok: false, name: "rabbitmq",
                    detail: "no node answered rabbitmqctl cluster_status (\((nodes + redisMembers.sorted()).joined(separator: ", ")))"))
        }

        let now = Int(Date().timeIntervalSince1970)
        let everyone = redisMembers.union(status?.nodes ?? []).sorted()
        let beats = (try? await redis.pipeline(everyone.map { ["GET", ClusterKeys.heartbeat($0)] })) ?? []
        for (index, node) in everyone.enumerated() {
            // A stamp from Redis is outside input: one that is not a time of this era is no heartbeat.
            let stamp =
                index < beats.count ? beats[index].string.flatMap { Int($0) }.flatMap { (0...now + 86_400).contains($0) ? $0 : nil } : nil
            report.members.append(
                Member(
                    node: node, inRedis: redisMembers.contains(node), heartbeatAge: stamp.map { max(0, now - $0) },
                    inRabbitMQCluster: status?.nodes.contains(node) ?? false,
                    running: status?.runningNodes.contains(node) ?? false))
        }
        if status != nil && report.checks.first?.ok == true {
            for member in report.members {
                let problems = [
                    member.inRedis ? nil : "running in RabbitMQ but not registered in Redis",
                    member.inRabbitMQCluster ? nil : "registered in Redis but not in RabbitMQ's cluster",
                    member.heartbeatAge == nil ? "no heartbeat (expired after \(heartbeatTTL))" : nil,
                ].compactMap { $0 }
                report.checks.append(
                    Check(
                        ok: problems.isEmpty, name: "member \(member.node)",
                        detail: problems.isEmpty ? "heartbeat \(member.heartbeatAge!)s ago" : problems.joined(separator: "; ")))
            }
            let master = report.master
            report.checks.append(
                Check(
                    ok: master.map { status!.runningNodes.contains($0) } ?? false, name: "master",
                    detail: master.map {
                        "\($0)" + (report.epoch.map { " (epoch \($0))" } ?? "") + (status!.runningNodes.contains($0) ? "" : ", not running")
                    } ?? "none elected"))
        }
        return report
    }

    /// `clusterctl status`: the two views side by side.
    public func renderStatus() -> String {
        var lines = ["master: \(master ?? "none")" + (epoch.map { "  (epoch \($0))" } ?? "")]
        lines.append("RabbitMQ view from \(viewFrom ?? "no node"): \(rabbitRunning.count)/\(rabbitNodes.count) running")
        lines.append("")
        lines.append("NODE".padding(toLength: 28, withPad: " ", startingAt: 0) + "REDIS      HEARTBEAT   RABBITMQ")
        for member in members {
            let redisColumn = member.inRedis ? "member" : "missing"
            let beat = member.heartbeatAge.map { "\($0)s ago" } ?? "expired"
            let rabbit = member.inRabbitMQCluster ? (member.running ? "running" : "down") : "not in cluster"
            lines.append(
                member.node.padding(toLength: 28, withPad: " ", startingAt: 0)
                    + redisColumn.padding(toLength: 11, withPad: " ", startingAt: 0)
                    + beat.padding(toLength: 12, withPad: " ", startingAt: 0) + rabbit)
        }
        let problems = checks.filter { !$0.ok }
        if !problems.isEmpty {
            lines.append("")
            lines += problems.map { "✗ \($0.name): \($0.detail)" }
        }
        return lines.joined(separator: "\n")
    }

    /// `clusterctl health`: one ✓/✗ line per check.
    public func renderHealth() -> String {
        checks.map { "\($0.ok ? "✓" : "✗") \($0.name): \($0.detail)" }.joined(separator: "\n")
    }
}
