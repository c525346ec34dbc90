import AMQPClient
import ClientSupport
import FogCore
import Foundation
import Logging
import RedisClient

/// The executor's state: what waits in the local buffer (per class), what runs, what room is
/// left. Deliveries come in from the class queues; the agent starts the highest class first,
/// and only while the task fits in the room left. An attempt runs as soon as it starts, its
/// `started` event going out meanwhile; its delivery is acked once that event is confirmed,
/// so a long task holds no broker delivery. A no-op reports `started` and `finished` in one
/// message.
actor FogNodeAgent {
    struct Buffered {
        let message: TaskMessage
        /// The delivery it came in (one it may share with the other attempts of a batch).
        let share: UUID
    }

    /// A delivery and how many of the attempts in it are not settled yet: it is acked when
    /// the last one is.
    struct Share {
        let delivery: AMQPDelivery
        var unsettled: Int
    }

    struct Running {
        let message: TaskMessage
        let process: AttemptProcess
        let identity: TaskIdentity?
    }

    let configuration: FogNodeConfiguration
    let consuming: AMQPConnection
    let events: EventPublisher
    let fenceDeadline: FenceDeadline
    let logger: Logger
    /// This node's life (seconds since 1970, as registered in `started_at`): its start, then
    /// each fence. A message placed in an earlier life is dropped: the scheduler takes such
    /// attempts back when it sees the new life (or the node lost), and places them again.
    private(set) var life: Double
    private var buffered: [PriorityClass: [Buffered]] = [:]
    private var running: [UUID: Running] = [:]
    private var used = Resources.zero
    /// Attempts started here whose last event is not confirmed yet (no-ops included, which
    /// never count as running): a draining node waits for them before it closes its channels.
    private(set) var unsettled = 0
    /// Deliveries not acked yet, by share id.
    private var shares: [UUID: Share] = [:]
    /// Attempts started or cancelled here lately, to drop redeliveries and republished copies.
    private var seen = RecentIDs(limit: 20_000)
    private var cancelled = RecentIDs(limit: 20_000)
    private(set) var fenced = false
    private(set) var draining = false
    /// Where attempts' control groups go, if anywhere.
    let cgroups: CgroupLayout
    /// Who attempts run as.
    let taskUsers: TaskUsers

    init(configuration: FogNodeConfiguration, consuming: AMQPConnection, events: EventPublisher, fence: FenceDeadline, life: Double,
         logger: Logger) throws {
        self.configuration = configuration
        self.consuming = consuming
        self.events = events
        self.fenceDeadline = fence
        self.life = life
        self.logger = logger
        cgroups = configuration.useCgroups ? CgroupLayout.detect(node: configuration.id.rawValue) : .unavailable(reason: "FOG_CGROUPS=false")
        taskUsers = TaskUsers(configuration: configuration)
        try AttemptDirectory.prepareRoot(configuration.workDirectory)
        logger.notice("attempts are confined by \(cgroups), run \(taskUsers.description), in directories under \(configuration.workDirectory)")
        if case .unprivileged = taskUsers.mode {
            logger.warning("this node is not root: tasks run as its own user and can reach what it can (run it as root for isolation)")
        }
    }

    var load: NodeLoad {
        NodeLoad(used: used, running: running.count, queued: buffered.values.reduce(0) { $0 + $1.count },
                 at: Date().timeIntervalSince1970, draining: draining)
    }

    var runningCount: Int { running.count }

    /// A delivery from one of this node's queues: one attempt, or a `TaskBatch` of them.
    /// Whatever it holds, it is settled: each attempt taken into the buffer, acked as a copy of
    /// an attempt started or cancelled here, or refused with an event (an invalid spec), and the
    /// delivery acked when the last of them is settled; or the delivery is rejected to
    /// `fog.dead` through the queue's dead-letter exchange (unreadable, or an attempt in it
    /// meant for another node: the scheduler's queued backstop then places its attempts
    /// again). A fog node publishes nowhere but `fog.events`.
    func received(_ delivery: AMQPDelivery) async {
        let messages: [TaskMessage]
        do {
            messages = try Self.attempts(in: delivery)
        } catch {
            logger.warning("rejecting an unreadable task message to fog.dead: \(error.reason)")
            try? await consuming.reject(delivery, requeue: false)
            return
        }
        if let stray = messages.first(where: { $0.node != configuration.id.rawValue }) {
            logger.warning("rejecting attempt \(stray.attemptID) to fog.dead: it was placed on node \(stray.node.prefix(80)), not on this one")
            try? await consuming.reject(delivery, requeue: false)
            return
        }
        let share = UUID()
        shares[share] = Share(delivery: delivery, unsettled: messages.count)
        for message in messages { await take(message, share: share) }
    }

    /// The attempts a delivery holds: a `TaskBatch` (by its `type` property) or one `TaskMessage`.
    static func attempts(in delivery: AMQPDelivery) throws(WireFormat.Unreadable) -> [TaskMessage] {
        guard delivery.properties.type == TaskBatch.messageType else {
            return [try WireFormat.decode(TaskMessage.self, from: delivery.body)]
        }
        let batch = try WireFormat.decode(TaskBatch.self, from: delivery.body)
        guard (1...TaskBatch.maxTasks).contains(batch.tasks.count) else {
            throw WireFormat.Unreadable("a task batch holds 1 to \(TaskBatch.maxTasks) attempts, not \(batch.tasks.count)", field: "tasks")
        }
        return batch.tasks
    }

    /// One attempt of a delivery: dropped, refused, or buffered and started when it fits.
    private func take(_ message: TaskMessage, share: UUID) async {
        // The deadline may have passed while this process was stopped, before the watch woke.
        if !fenced && fenceDeadline.passed { await fence() }
        if let placedIn = message.nodeStartedAt, placedIn < life - 0.0005 {
            // Placed before this node's last fence (or its previous process): the scheduler has
            // taken it back, or will when it sees the new life; running it now could run it twice.
            logger.info("dropping attempt \(message.attemptID): it was placed in an earlier life of this node (before its last fence or restart)")
            seen.insert(message.attemptID)
            await settle(share)
            return
        }
        if seen.contains(message.attemptID) || cancelled.contains(message.attemptID) {
            // A redelivery of an attempt started already, or one the scheduler cancelled.
            await settle(share)
            return
        }
        let problems = message.spec.problems
        guard problems.isEmpty else {
            seen.insert(message.attemptID)
            let reason = problems.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
            logger.warning("refusing attempt \(message.attemptID): its task is invalid: \(reason)")
            await finish(message, outcome: .rejected, reason: "the task message is invalid: \(reason)")
            await settle(share)
            return
        }
        if let index = buffered[message.spec.priority]?.firstIndex(where: { $0.message.attemptID == message.attemptID }) {
            // Here again while it waits: redelivered after a reconnect (the old delivery's
            // channel is gone; acking it is refused harmlessly) or published again. It waits on
            // the new delivery; its part of the old one is settled.
            let old = buffered[message.spec.priority]?[index].share
            buffered[message.spec.priority]?[index] = Buffered(message: message, share: share)
            if let old { await settle(old) }
            return
        }
        buffered[message.spec.priority, default: []].append(Buffered(message: message, share: share))
        await startWhatFits()
    }

    /// One attempt of a delivery is settled; the delivery is acked with the last one.
    private func settle(_ share: UUID) async {
        guard var entry = shares[share] else { return }
        entry.unsettled -= 1
        guard entry.unsettled <= 0 else {
            shares[share] = entry
            return
        }
        shares[share] = nil
        try? await consuming.ack(entry.delivery)
    }

    /// Starts buffered attempts, highest class first, while they fit (and, with a uid pool,
    /// while a uid is free).
    func startWhatFits() async {
        guard !fenced && !draining else { return }
        guard !fenceDeadline.passed else {
            await fence()
            return
        }
        for priority in PriorityClass.consumptionOrder {
            while let next = buffered[priority]?.first {
                let free = configuration.capacity - used
                guard free.fits(next.message.spec.resources) else { return }
                let (available, identity) = next.message.spec.kind == .noop ? (true, nil) : taskUsers.take()
                guard available else { return }
                buffered[priority]?.removeFirst()
                await start(next, as: identity)
            }
        }
    }

    private func start(_ item: Buffered, as identity: TaskIdentity?) async {
        let message = item.message
        let spec = message.spec
        seen.insert(message.attemptID)
        var argv: [String]
        if let command = spec.command, let program = command.first {
            guard configuration.allowedCommands.contains(program) else {
                taskUsers.giveBack(identity)
                await finish(message, outcome: .rejected, reason: "\(program) is not in FOG_ALLOWED_COMMANDS on node \(configuration.id)")
                await settle(item.share)
                return
            }
            argv = command
        } else {
            argv = Builtins.argv(spec.kind ?? .noop, spec.args)
        }
        let started = TaskEvent(taskID: message.taskID, attemptID: message.attemptID, node: configuration.id.rawValue,
                                kind: .started, at: Date().timeIntervalSince1970, epoch: message.epoch)
        let share = item.share
        if spec.kind == .noop {
            // A no-op ends as it starts: both events in one message, then the ack.
            let code = spec.args.exitCode ?? 0
            let result = AttemptProcess.Result(outcome: code == 0 ? .succeeded : .failed, exitCode: code, cpuSeconds: 0, peakMemoryMB: 0,
                                               stdoutTail: "", stderrTail: "", reason: code == 0 ? nil : "exited \(code)")
            let finished = finishedEvent(message, outcome: result.outcome, reason: result.reason, result: result)
            unsettled += 1
            Task {
                await events.send(started, finished)
                await settle(share)
                unsettled -= 1
            }
            return
        }
        used = used + spec.resources
        let process = AttemptProcess(name: "attempt \(message.attemptID)")
        running[message.attemptID] = Running(message: message, process: process, identity: identity)
        unsettled += 1
        Task {
            // The program starts while `started` is on its way: under load, a short program's
            // `finished` joins it in one message. The delivery is acked once `started` is
            // confirmed; a node that dies before then leaves the attempt queued in the store,
            // where a lost node's queued attempts are placed again.
            async let announced: Void = {
                await events.send(started)
                await self.settle(share)
            }()
            let directory = "\(configuration.workDirectory)/\(message.attemptID.uuidString.lowercased())"
            let stdin = spec.stdin.flatMap { Data(base64Encoded: $0) }.map { Array($0) } ?? []
            var environment = spec.env
            environment["PATH"] = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            environment["HOME"] = environment["HOME"] ?? directory
            environment["FOG_TASK_ID"] = message.taskID.uuidString.lowercased()
            environment["FOG_ATTEMPT"] = String(message.attempt)
            environment["FOG_ATTEMPT_ID"] = message.attemptID.uuidString.lowercased()
            environment["FOG_NODE_ID"] = configuration.id.rawValue
            let limits = AttemptLimits(
                cgroups: cgroups, name: message.attemptID.uuidString.lowercased(), user: identity,
                memoryBytes: spec.resources.memoryMB * 1_048_576, cpuMillicores: spec.resources.cpuMillicores,
                maxProcesses: configuration.maxProcessesPerAttempt)
            let result = await process.run(argv: argv, environment: environment, stdin: stdin, directory: directory,
                                           timeout: .milliseconds(Int64((spec.timeoutSeconds * 1000).rounded(.up))),
                                           tailBytes: configuration.outputTailBytes, limits: limits)
            await self.ended(message, result)
            await announced
            unsettled -= 1
        }
    }

    private func ended(_ message: TaskMessage, _ result: AttemptProcess.Result) async {
        taskUsers.giveBack(running[message.attemptID]?.identity)
        running[message.attemptID] = nil
        used = used - message.spec.resources
        await finish(message, outcome: result.outcome, reason: result.reason, result: result)
        await startWhatFits()
    }

    private func finish(_ message: TaskMessage, outcome: AttemptOutcome, reason: String?, result: AttemptProcess.Result? = nil) async {
        await events.send(finishedEvent(message, outcome: outcome, reason: reason, result: result))
    }

    private func finishedEvent(_ message: TaskMessage, outcome: AttemptOutcome, reason: String?, result: AttemptProcess.Result?) -> TaskEvent {
        TaskEvent(
            taskID: message.taskID, attemptID: message.attemptID, node: configuration.id.rawValue, kind: .finished,
            at: Date().timeIntervalSince1970, outcome: outcome, exitCode: result?.exitCode, cpuSeconds: result?.cpuSeconds,
            peakMemoryMB: result?.peakMemoryMB, stdoutTail: result?.stdoutTail, stderrTail: result?.stderrTail,
            outputLossy: result?.outputLossy == true ? true : nil, reason: reason, epoch: message.epoch)
    }

    /// A control message: stop the named attempt if it runs here; drop it from the buffer, and
    /// settle its delivery, if it waits here; and drop it if it arrives later.
    func cancel(attempt: UUID) async {
        cancelled.insert(attempt)
        if let entry = running[attempt] {
            logger.info("cancelling attempt \(attempt) of task \(entry.message.taskID)")
            entry.process.stop(.cancel)
        }
        for priority in PriorityClass.allCases {
            guard let index = buffered[priority]?.firstIndex(where: { $0.message.attemptID == attempt }),
                let item = buffered[priority]?.remove(at: index)
            else { continue }
            logger.info("dropping cancelled attempt \(attempt) from the buffer")
            await settle(item.share)
        }
    }

    /// The heartbeat could not be renewed in time: the scheduler may be placing this node's
    /// attempts elsewhere. This life ends: take no work, kill what runs (its outcome would be
    /// ignored), and drop what waits here, as every message of this life that comes later.
    /// The scheduler places them again when the node registers its new life, or declares it
    /// lost. (Given back to the queue, they would come back and run beside their new placements.)
    func fence() async {
        guard !fenced else { return }
        fenced = true
        life = max(life + 0.001, Date().timeIntervalSince1970)
        let waiting = buffered.values.reduce(0) { $0 + $1.count }
        logger.error("cannot renew the heartbeat: fenced; killing \(running.count) running attempts, dropping \(waiting) waiting ones (placed again by the scheduler), taking no work")
        for entry in running.values { entry.process.stop(.fence) }
        let items = buffered.values.flatMap { $0 }
        buffered = [:]
        for item in items {
            seen.insert(item.message.attemptID)
            await settle(item.share)
        }
    }

    func unfence() async {
        guard fenced else { return }
        fenced = false
        logger.notice("heartbeat renewed: a new life from \(RFC3339.format(life)), taking work again")
        await startWhatFits()
    }

    /// SIGTERM: take no more work and give the buffered deliveries back.
    func beginDrain() async {
        draining = true
        await giveBackBuffered()
    }

    /// After the drain timeout: stop what still runs; it is reported as interrupted.
    func interruptRunning() {
        for entry in running.values { entry.process.stop(.interrupt) }
    }

    /// Each delivery with an attempt still waiting here goes back to its queue, whole: the
    /// attempts of a batch that started already come back as copies, which the node's next
    /// life drops (and the scheduler places again if they never reported).
    private func giveBackBuffered() async {
        let items = buffered.values.flatMap { $0 }
        buffered = [:]
        for share in Set(items.map(\.share)) {
            guard let entry = shares.removeValue(forKey: share) else { continue }
            try? await consuming.nack(entry.delivery, requeue: true)
        }
    }
}

/// The ids of the last `limit` attempts seen, for dropping copies of them.
struct RecentIDs {
    let limit: Int
    private var set: Set<UUID> = []
    private var order: [UUID] = []

    init(limit: Int) { self.limit = limit }

    func contains(_ id: UUID) -> Bool { set.contains(id) }

    mutating func insert(_ id: UUID) {
        guard set.insert(id).inserted else { return }
        order.append(id)
        if order.count > limit {
            let old = order.prefix(limit / 2)
            set.subtract(old)
            order.removeFirst(old.count)
        }
    }
}
