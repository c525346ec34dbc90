import AMQPClient
import ClientSupport
import FogCore
import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization

/// `fog-node run`: registers in Redis, heartbeats, consumes its class queues and the control
/// plane, and runs attempts through `FogNodeAgent`. On SIGTERM it drains: no new work, running
/// attempts get `FOG_DRAIN_TIMEOUT` to finish, the rest are reported interrupted (retried
/// elsewhere), and it exits 0. It declares nothing on the broker but its own control queue:
/// its user may not (THREATS.md), and the scheduler declares a node's queues once it heartbeats.
public struct FogNodeService: Service {
    let configuration: FogNodeConfiguration
    let logger: Logger

    public init(configuration: FogNodeConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let brokers = try AMQPConfiguration(urls: configuration.brokerURLs, connectionName: "fog-node \(configuration.id)")
        var consumingConfiguration = brokers
        consumingConfiguration.connectionName += " tasks"
        let publishing = AMQPConnection(configuration: brokers, logger: logger)
        let consuming = AMQPConnection(configuration: consumingConfiguration, logger: logger)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redisURL), logger: logger)
        defer {
            publishing.close()
            consuming.close()
            redis.close()
        }
        let fence = FenceDeadline(margin: configuration.heartbeatTTL - configuration.heartbeatInterval)
        let agent = try FogNodeAgent(
            configuration: configuration, consuming: consuming,
            events: EventPublisher(connection: publishing, node: configuration.id.rawValue, logger: logger), fence: fence,
            life: Date().timeIntervalSince1970, logger: logger)
        let info = configuration.registration(startedAt: await agent.life)
        logger.notice(
            "fog node \(configuration.id) in zone \(configuration.zone): \(configuration.capacity.cpuMillicores)m CPU, \(configuration.capacity.memoryMB) MB"
        )

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await heartbeat(redis: redis, agent: agent, info: info, fence: fence) }
            group.addTask { await watchFence(agent: agent, fence: fence) }
            for priority in PriorityClass.consumptionOrder {
                group.addTask { await consume(Topology.nodeQueue(configuration.id, priority), on: consuming, agent: agent) }
            }
            group.addTask { await consumeControl(on: consuming, agent: agent) }
            group.addTask {
                try? await gracefulShutdown()
                await drain(agent: agent, redis: redis)
            }
            await group.next()
            group.cancelAll()
        }
        // Gone from the live set at once, so that what is still queued here is placed elsewhere.
        _ = try? await redis.delete(FogKeys.heartbeat(configuration.id.rawValue))
        logger.notice("fog node \(configuration.id) stopped")
    }

    /// Registers, then writes the heartbeat every interval, and moves the fence deadline on
    /// after each renewal that succeeded (see `watchFence`). The registration carries the
    /// agent's life: after a fence, a new one, so that the scheduler places again what it had
    /// placed here before (the agent drops those messages).
    func heartbeat(redis: RedisConnection, agent: FogNodeAgent, info: FogNodeInfo, fence: FenceDeadline) async {
        let id = configuration.id.rawValue
        var info = info
        while !Task.isCancelled {
            // Late (the process was stopped, the host froze): the key may have expired and the
            // scheduler given our attempts away. Fence before renewing, or the renewal below
            // would move the deadline on before the watch has seen it pass.
            if fence.passed {
                await agent.fence()
            }
            let life = await agent.life
            if info.startedAt != life {
                info.startedAt = life
                fence.registrationLost()
            }
            do {
                if fence.needsRegistration() {
                    try await redis.hashSet(FogKeys.node(id), info.hashFields)
                    _ = try await redis.setAdd(FogKeys.nodes, id)
                    fence.registered()
                }
                let load = await agent.load
                // The key's TTL runs from when Redis sets it, which is after this instant: a
                // deadline counted from here can only come early, never late.
                let sent = ContinuousClock.now
                _ = try await redis.set(
                    FogKeys.heartbeat(id), to: String(decoding: WireFormat.encode(load), as: UTF8.self),
                    expiry: configuration.heartbeatTTL)
                fence.renewed(sentAt: sent)
                await agent.unfence()
            } catch {
                fence.registrationLost()
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// The fence as a deadline: TTL minus one interval after the last renewal was sent, this
    /// node stops its attempts and takes no work, whatever the heartbeat loop is doing then
    /// (a Redis call may block for longer than the TTL; a stopped process wakes up late). The
    /// scheduler declares the node lost only once the key has expired, one interval later.
    func watchFence(agent: FogNodeAgent, fence: FenceDeadline) async {
        while !Task.isCancelled {
            let deadline = fence.deadline
            if ContinuousClock.now >= deadline {
                await agent.fence()
                try? await Task.sleep(for: .milliseconds(100))
            } else {
                // A renewal meanwhile only moves the deadline later: look again then.
                try? await Task.sleep(until: deadline, clock: .continuous)
            }
        }
    }

    func consume(_ queue: String, on connection: AMQPConnection, agent: FogNodeAgent) async {
        // Short: until the scheduler has declared the queue (a few hundred ms after the first
        // heartbeat), each try fails at once.
        var retry = RetryLog(
            "cannot consume \(queue) yet", logger: logger, backoff: Backoff(initial: .milliseconds(200), maximum: .seconds(2)))
        while !Task.isCancelled {
            do {
                let consumer = try await connection.consume(queue: queue, prefetch: 50)
                retry.succeeded()
                for try await delivery in consumer {
                    if await agent.draining {
                        // Stop consuming: what is left in the queue is placed elsewhere.
                        try? await connection.nack(delivery, requeue: true)
                        await consumer.cancel()
                        return
                    }
                    await agent.received(delivery)
                }
            } catch {
                if Task.isCancelled { return }
                let hint = (error as? AMQPError)?.replyCode == 404 ? " (the scheduler declares it once this node heartbeats)" : ""
                await retry.failedAndWait(error, hint: hint)
            }
        }
    }

    /// The control plane: an exclusive queue of this process bound to `fog.cluster`.
    func consumeControl(on connection: AMQPConnection, agent: FogNodeAgent) async {
        let queue = "fog.control.\(configuration.id).\(UUID().uuidString.prefix(8).lowercased())"
        var retry = RetryLog("cannot listen on \(Topology.clusterExchange)", logger: logger)
        while !Task.isCancelled {
            do {
                try await connection.declareQueue(queue, durable: false, exclusive: true, autoDelete: true)
                try await connection.bindQueue(queue, to: Topology.clusterExchange, routingKey: "")
                let consumer = try await connection.consume(queue: queue, prefetch: 100)
                retry.succeeded()
                for try await delivery in consumer {
                    try? await connection.ack(delivery)
                    guard let message = try? WireFormat.decode(ControlMessage.self, from: delivery.body) else { continue }
                    if message.kind == .cancel, message.node == configuration.id.rawValue || message.node == nil,
                        let attempt = message.attemptID
                    {
                        await agent.cancel(attempt: attempt)
                    }
                }
            } catch {
                if Task.isCancelled { return }
                await retry.failedAndWait(error)
            }
        }
    }

    func drain(agent: FogNodeAgent, redis: RedisConnection) async {
        await agent.beginDrain()
        // Tell the schedulers now, not at the next heartbeat: nothing more is to be placed here.
        let load = await agent.load
        _ = try? await redis.set(
            FogKeys.heartbeat(configuration.id.rawValue), to: String(decoding: WireFormat.encode(load), as: UTF8.self),
            expiry: configuration.heartbeatTTL)
        let running = await agent.runningCount
        logger.notice("draining: \(running) attempts running, waiting up to \(configuration.drainTimeout)")
        if !(await agent.wait(until: .nothingRuns, deadline: .now + configuration.drainTimeout)) {
            await agent.interruptRunning()
            // An interrupted attempt ends within its kill grace; the bound is for a process
            // that will not die (in uninterruptible sleep).
            _ = await agent.wait(until: .nothingRuns, deadline: .now + .seconds(30))
        }
        // The last events and acks go out before the channels close: a no-op never counts as
        // running, and a program's `finished` is sent after it stopped running. Bounded, for a
        // broker that is away (the scheduler then places the unreported attempts again).
        _ = await agent.wait(until: .allSettled, deadline: .now + .seconds(10))
        // Let the last acks settle before the channels close (RabbitMQ 3.10 was seen to drop them).
        try? await Task.sleep(for: .milliseconds(300))
    }
}

/// The node's `HeartbeatTimer` on the continuous clock, shared: the heartbeat loop renews and
/// registers through it; the fence's watch and the agent (before it starts anything) read its
/// deadline, `margin` (TTL minus one interval) after the last renewal that succeeded was sent.
/// It counts from the process's start, so that a node that never reaches Redis stays fenced.
final class FenceDeadline: Sendable {
    private let timer: Mutex<HeartbeatTimer<ContinuousClock.Instant>>

    init(margin: Duration) { timer = Mutex(HeartbeatTimer(margin: margin, startedAt: .now)) }

    var deadline: ContinuousClock.Instant { timer.withLock { $0.fenceDeadline } }
    var passed: Bool {
        let now = ContinuousClock.now
        return timer.withLock { $0.mustFence(at: now) }
    }

    func renewed(sentAt instant: ContinuousClock.Instant) { timer.withLock { $0.renewed(sentAt: instant) } }

    func needsRegistration() -> Bool {
        let now = ContinuousClock.now
        return timer.withLock { $0.needsRegistration(at: now) }
    }

    func registered() {
        let now = ContinuousClock.now
        timer.withLock { $0.registered(at: now) }
    }

    func registrationLost() { timer.withLock { $0.registrationLost() } }
}
