import AMQPClient
import ClientSupport
import FogCore
import Foundation
import Logging
import RedisClient

/// The executor: carries out what its `Admission` decides, against the broker (acks, rejects,
/// requeues), the event publisher and the attempts' processes. An attempt runs as soon as it
/// starts, its `started` event going out meanwhile; its delivery is acked once that event is
/// confirmed, so a long task holds no broker delivery. A no-op reports `started` and
/// `finished` in one message.
actor FogNodeAgent {
    let configuration: FogNodeConfiguration
    let consuming: AMQPConnection
    let events: EventPublisher
    let fenceDeadline: FenceDeadline
    let logger: Logger
    private var admission: Admission<AMQPDelivery>
    private var processes: [UUID: AttemptProcess] = [:]
    /// Where attempts' control groups go, if anywhere.
    let cgroups: CgroupLayout

    init(
        configuration: FogNodeConfiguration, consuming: AMQPConnection, events: EventPublisher, fence: FenceDeadline, life: Double,
        logger: Logger
    ) throws {
        self.configuration = configuration
        self.consuming = consuming
        self.events = events
        self.fenceDeadline = fence
        self.logger = logger
        let users = TaskUsers(configuration: configuration)
        admission = Admission(
            node: configuration.id.rawValue, capacity: configuration.capacity, allowedCommands: configuration.allowedCommands,
            life: life, users: users)
        cgroups =
            configuration.useCgroups ? CgroupLayout.detect(node: configuration.id.rawValue) : .unavailable(reason: "FOG_CGROUPS=false")
        try AttemptDirectory.prepareRoot(configuration.workDirectory)
        logger.notice("attempts are confined by \(cgroups), run \(users.description), in directories under \(configuration.workDirectory)")
        if case .unprivileged = users.mode {
            logger.warning("this node is not root: tasks run as its own user and can reach what it can (run it as root for isolation)")
        }
    }

    var life: Double { admission.life }
    var load: NodeLoad { admission.load(at: Date().timeIntervalSince1970) }
    var runningCount: Int { admission.running.count }
    var unsettled: Int { admission.unsettled }
    var draining: Bool { admission.draining }
    var fenced: Bool { admission.fenced }

    /// A delivery from one of this node's queues: one attempt, or a `TaskBatch` of them.
    /// Whatever it holds, it is settled (`Admission.received`); an unreadable one is rejected
    /// to `fog.dead` through the queue's dead-letter exchange (the scheduler's queued backstop
    /// then places its attempts again). A fog node publishes nowhere but `fog.events`.
    func received(_ delivery: AMQPDelivery) async {
        let messages: [TaskMessage]
        do {
            messages = try Self.attempts(in: delivery)
        } catch {
            logger.warning("rejecting an unreadable task message to fog.dead: \(error.reason)")
            try? await consuming.reject(delivery, requeue: false)
            return
        }
        // The deadline may have passed while this process was stopped, before the watch woke.
        await fenceIfLate()
        await perform(admission.received(delivery, attempts: messages))
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

    /// Carries out the admission's actions, in order.
    private func perform(_ actions: [Admission<AMQPDelivery>.Action]) async {
        for action in actions {
            switch action {
            case .ack(let delivery):
                try? await consuming.ack(delivery)
            case .requeue(let delivery):
                try? await consuming.nack(delivery, requeue: true)
            case .reject(let delivery, let reason):
                logger.warning("rejecting a task message to fog.dead: \(reason)")
                try? await consuming.reject(delivery, requeue: false)
            case .refuse(let message, let reason):
                logger.warning("refusing attempt \(message.attemptID): \(reason)")
                await events.send(finishedEvent(message, outcome: .rejected, reason: reason, result: nil))
            case .stop(let attemptID, let reason):
                if reason == .cancel { logger.info("cancelling attempt \(attemptID)") }
                processes[attemptID]?.stop(reason)
            case .dropped(let attemptID, let reason):
                logger.info("dropping attempt \(attemptID): \(reason)")
            case .start(let message, let identity, let share):
                start(message, as: identity, share: share)
            }
        }
    }

    /// Fences now if the heartbeat's deadline passed without the watch having seen it.
    private func fenceIfLate() async {
        if !admission.fenced && fenceDeadline.passed { await fence() }
    }

    /// Runs an attempt that `Admission` started: a no-op reports both events in one message;
    /// a program runs while its `started` is on its way.
    private func start(_ message: TaskMessage, as identity: TaskIdentity?, share: Admission<AMQPDelivery>.ShareID) {
        let spec = message.spec
        let argv = spec.command.flatMap { $0.isEmpty ? nil : $0 } ?? Builtins.argv(spec.kind ?? .noop, spec.args)
        let started = TaskEvent(
            taskID: message.taskID, attemptID: message.attemptID, node: configuration.id.rawValue,
            kind: .started, at: Date().timeIntervalSince1970, epoch: message.epoch)
        if spec.kind == .noop {
            // A no-op ends as it starts: both events in one message, then the ack.
            let code = spec.args.exitCode ?? 0
            let result = AttemptProcess.Result(
                outcome: code == 0 ? .succeeded : .failed, exitCode: code, cpuSeconds: 0, peakMemoryMB: 0,
                stdoutTail: "", stderrTail: "", reason: code == 0 ? nil : "exited \(code)")
            let finished = finishedEvent(message, outcome: result.outcome, reason: result.reason, result: result)
            Task {
                await events.send(started, finished)
                await self.announced(share)
                self.settled()
            }
            return
        }
        let process = AttemptProcess(name: "attempt \(message.attemptID)")
        processes[message.attemptID] = process
        Task {
            // The program starts while `started` is on its way: under load, a short program's
            // `finished` joins it in one message. The delivery is acked once `started` is
            // confirmed; a node that dies before then leaves the attempt queued in the store,
            // where a lost node's queued attempts are placed again.
            async let announced: Void = {
                await events.send(started)
                await self.announced(share)
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
            let result = await process.run(
                argv: argv, environment: environment, stdin: stdin, directory: directory,
                timeout: .milliseconds(Int64((spec.timeoutSeconds * 1000).rounded(.up))),
                tailBytes: configuration.outputTailBytes, limits: limits)
            await self.ended(message, result)
            await announced
            self.settled()
        }
    }

    private func announced(_ share: Admission<AMQPDelivery>.ShareID) async {
        await perform(admission.announced(share: share))
    }

    private func settled() {
        admission.attemptSettled()
        wakeWaiters()
    }

    /// The program ended: its room goes to what waits (after its `finished` is handed over).
    private func ended(_ message: TaskMessage, _ result: AttemptProcess.Result) async {
        processes[message.attemptID] = nil
        let next = admission.ended(message.attemptID)
        wakeWaiters()
        await events.send(finishedEvent(message, outcome: result.outcome, reason: result.reason, result: result))
        await fenceIfLate()
        await perform(next)
    }

    private func finishedEvent(_ message: TaskMessage, outcome: AttemptOutcome, reason: String?, result: AttemptProcess.Result?)
        -> TaskEvent
    {
        TaskEvent(
            taskID: message.taskID, attemptID: message.attemptID, node: configuration.id.rawValue, kind: .finished,
            at: Date().timeIntervalSince1970, outcome: outcome, exitCode: result?.exitCode, cpuSeconds: result?.cpuSeconds,
            peakMemoryMB: result?.peakMemoryMB, stdoutTail: result?.stdoutTail, stderrTail: result?.stderrTail,
            outputLossy: result?.outputLossy == true ? true : nil, reason: reason, epoch: message.epoch)
    }

    /// A control message: stop the named attempt if it runs here, drop it if it waits or comes.
    func cancel(attempt: UUID) async {
        await perform(admission.cancel(attempt))
    }

    /// The heartbeat could not be renewed in time (`Admission.fence`): this life ends.
    func fence() async {
        guard !admission.fenced else { return }
        logger.error(
            "cannot renew the heartbeat: fenced; killing \(admission.running.count) running attempts, dropping \(admission.waiting) waiting ones (placed again by the scheduler), taking no work"
        )
        await perform(admission.fence(now: Date().timeIntervalSince1970))
    }

    func unfence() async {
        guard admission.fenced else { return }
        logger.notice("heartbeat renewed: a new life from \(RFC3339.format(admission.life)), taking work again")
        await perform(admission.unfence())
    }

    /// SIGTERM: take no more work and give the buffered deliveries back.
    func beginDrain() async {
        await perform(admission.beginDrain())
    }

    /// After the drain timeout: stop what still runs; it is reported as interrupted.
    func interruptRunning() async {
        await perform(admission.interruptRunning())
    }

    // MARK: Waiting for the drain

    enum Quiet: Sendable {
        /// No attempt runs.
        case nothingRuns
        /// Every attempt's last event is confirmed.
        case allSettled
    }

    private var waiters: [Int: (Quiet, CheckedContinuation<Void, Never>)] = [:]
    private var nextWaiter = 0

    private func isQuiet(_ quiet: Quiet) -> Bool {
        switch quiet {
        case .nothingRuns: admission.running.isEmpty
        case .allSettled: admission.unsettled == 0
        }
    }

    /// Returns when `quiet` holds, or at `deadline`; true if it holds.
    func wait(until quiet: Quiet, deadline: ContinuousClock.Instant) async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.whenQuiet(quiet) }
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            await group.next()
            group.cancelAll()
        }
        return isQuiet(quiet)
    }

    private func whenQuiet(_ quiet: Quiet) async {
        let id = nextWaiter
        nextWaiter += 1
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if isQuiet(quiet) || Task.isCancelled {
                    continuation.resume()
                } else {
                    waiters[id] = (quiet, continuation)
                }
            }
        } onCancel: {
            Task { await self.wake(id) }
        }
    }

    private func wake(_ id: Int) { waiters.removeValue(forKey: id)?.1.resume() }

    private func wakeWaiters() {
        for (id, entry) in waiters where isQuiet(entry.0) { wake(id) }
    }
}
