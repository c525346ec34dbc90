import FogCore
import Foundation
import Spawn

/// The RabbitMQ command-line tools clusterctl calls.
public enum RabbitTool: String, Sendable {
    case ctl = "rabbitmqctl"
    case queues = "rabbitmq-queues"
    case diagnostics = "rabbitmq-diagnostics"
}

/// How clusterctl talks to RabbitMQ: a tool, a target node, arguments. The real one runs the
/// CLI; the decisions above it are pure and tested without it.
public protocol RabbitMQControl: Sendable {
    func run(_ tool: RabbitTool, node: String, _ arguments: [String]) async throws -> CommandRunner.Output
}

/// Runs the RabbitMQ CLI tools by argv with a timeout (`rabbitmqctl -n NODE -q ...`). The
/// tools find the Erlang cookie and epmd through this process's environment.
public struct RabbitMQCLI: RabbitMQControl {
    public var binDirectory: String?
    public var timeout: Duration
    private let runner: CommandRunner

    public init(binDirectory: String? = nil, timeout: Duration = .seconds(90)) {
        self.binDirectory = binDirectory
        self.timeout = timeout
        self.runner = CommandRunner(name: "rabbitmq-cli")
    }

    public func run(_ tool: RabbitTool, node: String, _ arguments: [String]) async throws -> CommandRunner.Output {
        let program = binDirectory.map { "\($0)/\(tool.rawValue)" } ?? tool.rawValue
        return try await runner.run([program, "-n", node, "-q"] + arguments, timeout: timeout)
    }
}

/// Why a RabbitMQ command failed, with the tool's own words.
public struct RabbitMQCommandError: Error, CustomStringConvertible {
    public let command: String
    public let output: CommandRunner.Output
    public var description: String {
        let text = (output.stderr.isEmpty ? output.stdout : output.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
        return "\(command) exited \(output.status): \(text.prefix(400))"
    }
}

/// One queue as `rabbitmqctl list_queues name type messages members` reports it.
public struct RabbitQueueRow: Sendable {
    public var vhost: String
    public var name: String
    public var isQuorum: Bool
    public var messages: Int
    public var members: [String]
}

extension RabbitMQControl {
    @discardableResult
    func checked(_ tool: RabbitTool, node: String, _ arguments: [String]) async throws -> String {
        let output = try await run(tool, node: node, arguments)
        guard output.succeeded else {
            throw RabbitMQCommandError(command: "\(tool.rawValue) -n \(node) \(arguments.joined(separator: " "))", output: output)
        }
        return output.stdout
    }

    /// True when the node's RabbitMQ application is running (not merely its Erlang VM).
    public func isRunning(_ node: String) async -> Bool {
        (try? await run(.diagnostics, node: node, ["check_running"]).succeeded) ?? false
    }

    public func clusterStatus(_ node: String) async throws -> RabbitClusterStatus {
        try RabbitClusterStatus(json: try await checked(.ctl, node: node, ["cluster_status", "--formatter", "json"]))
    }

    /// Every queue in every vhost, as `node` sees them: one `list_vhosts`, one `list_queues` each.
    public func queues(on node: String) async throws -> [RabbitQueueRow] {
        let vhosts = try await checked(.ctl, node: node, ["list_vhosts", "name", "--formatter", "json"])
        let names = (try JSONSerialization.jsonObject(with: Data(vhosts.utf8)) as? [[String: Any]] ?? []).compactMap {
            $0["name"] as? String
        }
        var queues: [RabbitQueueRow] = []
        for vhost in names {
            let json = try await checked(
                .ctl, node: node, ["list_queues", "-p", vhost, "name", "type", "messages", "members", "--formatter", "json"])
            for row in try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? [] {
                queues.append(
                    RabbitQueueRow(
                        vhost: vhost, name: row["name"] as? String ?? "?", isQuorum: row["type"] as? String == "quorum",
                        messages: row["messages"] as? Int ?? 0, members: row["members"] as? [String] ?? []))
            }
        }
        return queues
    }

    /// Messages held only by `node`: in classic queues, and in quorum queues whose only member it is.
    public func unreplicatedMessages(on node: String) async throws -> Int {
        try await queues(on: node)
            .filter { !$0.isQuorum || $0.members.isEmpty || $0.members == [node] }
            .reduce(0) { $0 + $1.messages }
    }

    /// Every quorum queue in every vhost, with its members, as `node` sees them.
    public func quorumQueues(on node: String) async throws -> [QueueReplication.Queue] {
        try await queues(on: node).filter(\.isQuorum).map { QueueReplication.Queue(name: "\($0.vhost)/\($0.name)", members: $0.members) }
    }

    /// stop_app, [forget_cluster_node on the master,] reset, join_cluster, start_app: the node
    /// becomes a member of `master`'s cluster. Forgetting happens while the node's application
    /// is stopped: forgetting a wiped node that runs under the same name was seen to fail
    /// (`{:no_exists, :rabbit_node_maintenance_states}`).
    public func resetAndJoin(_ node: String, master: String, forgetFirst: Bool = false) async throws {
        try await checked(.ctl, node: node, ["stop_app"])
        do {
            if forgetFirst { try await forget(node, on: master) }
            try await checked(.ctl, node: node, ["reset"])
        } catch {
            _ = try? await checked(.ctl, node: node, ["start_app"])
            throw error
        }
        do {
            try await checked(.ctl, node: node, ["join_cluster", master])
        } catch {
            // Never leave the node stopped: start it again (standalone), then report.
            _ = try? await checked(.ctl, node: node, ["start_app"])
            throw error
        }
        try await checked(.ctl, node: node, ["start_app"])
    }

    /// For a wiped node the cluster still lists: stop it, have the master forget it, start it
    /// again on its own. It can then join like a fresh node.
    public func leaveList(_ node: String, master: String) async throws {
        try await checked(.ctl, node: node, ["stop_app"])
        do {
            try await forget(node, on: master)
        } catch {
            _ = try? await checked(.ctl, node: node, ["start_app"])
            throw error
        }
        try await checked(.ctl, node: node, ["start_app"])
    }

    /// Removes `node` from the cluster, asking the live member `on`.
    public func forget(_ node: String, on member: String) async throws {
        try await checked(.ctl, node: member, ["forget_cluster_node", node])
    }

    /// Adds a replica on `node` to every quorum queue that lacks one.
    public func growQueues(onto node: String) async throws {
        try await checked(.queues, node: node, ["grow", node, "all"])
    }
}
