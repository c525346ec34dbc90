import AMQPClient
import ClientSupport
import FogCore
import Foundation
import Logging
import RedisClient
import ServiceSupport

/// The executor's state: what waits in the local buffer (per class), what runs, what room is
/// left. Deliveries come in from the class queues; the agent starts the highest class first,
/// and only while the task fits in the room left. An attempt's delivery is acked once its
/// `started` event is confirmed, so a long task holds no broker delivery.
actor FogNodeAgent {
    struct Buffered {
        let message: TaskMessage
        let delivery: AMQPDelivery
    }

    struct Running {
        let message: TaskMessage
        let process: AttemptProcess?
    }

    let configuration: FogNodeConfiguration
    let consuming: AMQPConnection
    let events: EventPublisher
    let logger: Logger
    private var buffered: [PriorityClass: [Buffered]] = [:]
    private var running: [UUID: Running] = [:]
    private var used = Resources.zero
    /// Attempts started here lately, to drop redeliveries and republished copies.
    private var seen: Set<UUID> = []
    private var seenOrder: [UUID] = []
    private(set) var fenced = false
    private(set) var draining = false
    /// Where attempts' control groups go, if anywhere.
    let cgroups: CgroupLayout
    /// The task user, when the node runs as root.
    let taskUser: (uid: uid_t, gid: gid_t)?

    init(configuration: FogNodeConfiguration, consuming: AMQPConnection, events: EventPublisher, logger: Logger) {
        self.configuration = configuration
        self.consuming = consuming
        self.events = events
        self.logger = logger
        cgroups = configuration.useCgroups ? CgroupLayout.detect(node: configuration.id.rawValue) : .unavailable(reason: "FOG_CGROUPS=false")
        taskUser = ExecShim.taskUser(named: configuration.taskUser)
        logger.notice("attempts are confined by \(cgroups), run as \(taskUser.map { "uid \($0.uid)" } ?? "this node's user")")
    }

    var load: NodeLoad {
        NodeLoad(used: used, running: running.count, queued: buffered.values.reduce(0) { $0 + $1.count },
                 at: Date().timeIntervalSince1970, draining: draining)
    }

    var runningCount: Int { running.count }

    /// A delivery from one of this node's queues.
    func received(_ delivery: AMQPDelivery) async {
        let message: TaskMessage
        do {
            message = try WireFormat.decode(TaskMessage.self, from: delivery.body)
        } catch {
            logger.warning("dead-lettering an unreadable task message: \(error.reason)")
            do {
                try await TopologyDeclarations.deadLetter(delivery, reason: error.reason, on: events.connection)
                try await consuming.ack(delivery)
            } catch {
                try? await consuming.reject(delivery, requeue: false)
            }
            return
        }
        if seen.contains(message.attemptID) || message.node != configuration.id.rawValue {
            // A redelivery of an attempt started already, or a message for another node.
            try? await consuming.ack(delivery)
            return
        }
        if let index = buffered[message.spec.priority]?.firstIndex(where: { $0.message.attemptID == message.attemptID }) {
            // Redelivered after a reconnect while it waited here: only the new delivery can be acked.
            buffered[message.spec.priority]?[index] = Buffered(message: message, delivery: delivery)
            return
        }
        buffered[message.spec.priority, default: []].append(Buffered(message: message, delivery: delivery))
        await startWhatFits()
    }

    private func remember(_ attempt: UUID) {
        seen.insert(attempt)
        seenOrder.append(attempt)
        if seenOrder.count > 20_000 {
            seen.subtract(seenOrder.prefix(10_000))
            seenOrder.removeFirst(10_000)
        }
    }

    /// Starts buffered attempts, highest class first, while they fit.
    func startWhatFits() async {
        guard !fenced && !draining else { return }
        for priority in PriorityClass.consumptionOrder {
            while let next = buffered[priority]?.first {
                let free = configuration.capacity - used
                guard free.fits(next.message.spec.resources) else { return }
                buffered[priority]?.removeFirst()
                await start(next)
            }
        }
    }

    private func start(_ item: Buffered) async {
        let message = item.message
        let spec = message.spec
        remember(message.attemptID)
        var argv: [String]
        if let command = spec.command {
            guard configuration.allowedCommands.contains(command[0]) else {
                await finish(message, outcome: .rejected, reason: "\(command[0]) is not in FOG_ALLOWED_COMMANDS on node \(configuration.id)")
                try? await consuming.ack(item.delivery)
                return
            }
            argv = command
        } else {
            argv = Builtins.argv(spec.kind ?? .noop, spec.args)
        }
        used = used + spec.resources
        let process = spec.kind == .noop ? nil : AttemptProcess(name: "attempt \(message.attemptID)")
        running[message.attemptID] = Running(message: message, process: process)
        let started = TaskEvent(taskID: message.taskID, attemptID: message.attemptID, node: configuration.id.rawValue,
                                kind: .started, at: Date().timeIntervalSince1970)
        let delivery = item.delivery
        Task {
            await events.send(started)
            try? await consuming.ack(delivery)
            let result: AttemptProcess.Result
            if let process {
                let directory = "\(configuration.workDirectory)/\(message.attemptID.uuidString.lowercased())"
                let stdin = spec.stdin.flatMap { Data(base64Encoded: $0) }.map { Array($0) } ?? []
                var environment = spec.env
                environment["PATH"] = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
                environment["FOG_TASK_ID"] = message.taskID.uuidString.lowercased()
                environment["FOG_ATTEMPT"] = String(message.attempt)
                let limits = AttemptLimits(
                    cgroups: cgroups, name: message.attemptID.uuidString.lowercased(), user: taskUser,
                    memoryBytes: spec.resources.memoryMB * 1_048_576, cpuMillicores: spec.resources.cpuMillicores,
                    maxProcesses: configuration.maxProcessesPerAttempt)
                result = await process.run(argv: argv, environment: environment, stdin: stdin, directory: directory,
                                           timeout: .milliseconds(Int64(spec.timeoutSeconds * 1000)), tailBytes: configuration.outputTailBytes,
                                           limits: limits)
            } else {
                let code = spec.args.exitCode ?? 0
                result = AttemptProcess.Result(outcome: code == 0 ? .succeeded : .failed, exitCode: code, cpuSeconds: 0, peakMemoryMB: 0,
                                               stdoutTail: "", stderrTail: "", reason: code == 0 ? nil : "exited \(code)")
            }
            await self.ended(message, result)
        }
    }

    private func ended(_ message: TaskMessage, _ result: AttemptProcess.Result) async {
        running[message.attemptID] = nil
        used = used - message.spec.resources
        await finish(message, outcome: result.outcome, reason: result.reason, result: result)
        await startWhatFits()
    }

    private func finish(_ message: TaskMessage, outcome: AttemptOutcome, reason: String?, result: AttemptProcess.Result? = nil) async {
        let event = TaskEvent(
            taskID: message.taskID, attemptID: message.attemptID, node: configuration.id.rawValue, kind: .finished,
            at: Date().timeIntervalSince1970, outcome: outcome, exitCode: result?.exitCode, cpuSeconds: result?.cpuSeconds,
            peakMemoryMB: result?.peakMemoryMB, stdoutTail: result?.stdoutTail, stderrTail: result?.stderrTail, reason: reason)
        await events.send(event)
    }

    /// A control message: stop the named attempt if it runs here.
    func cancel(attempt: UUID) {
        if let entry = running[attempt] {
            logger.info("cancelling attempt \(attempt) of task \(entry.message.taskID)")
            entry.process?.stop(.cancel)
        }
        for priority in PriorityClass.allCases {
            buffered[priority]?.removeAll { $0.message.attemptID == attempt }
        }
    }

    /// The heartbeat could not be renewed within the TTL: the scheduler may be placing this
    /// node's attempts elsewhere. Stop taking work, stop what runs (its outcome would be
    /// ignored), and give the buffered deliveries back.
    func fence() async {
        guard !fenced else { return }
        fenced = true
        logger.error("cannot renew the heartbeat: fenced; stopping \(running.count) running attempts, taking no work")
        for entry in running.values { entry.process?.stop(.interrupt) }
        await giveBackBuffered()
    }

    func unfence() async {
        guard fenced else { return }
        fenced = false
        logger.notice("heartbeat renewed: taking work again")
        await startWhatFits()
    }

    /// SIGTERM: take no more work and give the buffered deliveries back.
    func beginDrain() async {
        draining = true
        await giveBackBuffered()
    }

    /// After the drain timeout: stop what still runs; it is reported as interrupted.
    func interruptRunning() {
        for entry in running.values { entry.process?.stop(.interrupt) }
    }

    private func giveBackBuffered() async {
        let items = buffered.values.flatMap { $0 }
        buffered = [:]
        for item in items {
            try? await consuming.nack(item.delivery, requeue: true)
        }
    }
}
