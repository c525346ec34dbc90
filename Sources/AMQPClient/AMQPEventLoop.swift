import ClientSupport
import Foundation
import Logging
import Synchronization

/// The thread that owns an `AMQPSession`: it runs the connection's commands in order, reads
/// what the broker sends (confirms, returns, deliveries), and reconnects, moving through the
/// URL list with backoff, replaying the declared topology and restarting consumers.
///
/// Everything below `commands` is touched only by the loop thread.
final class AMQPEventLoop: @unchecked Sendable {
    /// Work for the loop thread. `run` is called while connected; `fail` when it cannot be.
    struct Command: Sendable {
        let run: @Sendable (AMQPEventLoop) -> Void
        let fail: @Sendable (AMQPError) -> Void
    }

    let configuration: AMQPConfiguration
    private let logger: Logger
    private let commands = Mutex<(queue: [Command], closing: Bool)>(([], false))
    /// A self-pipe: other threads write a byte to wake the loop out of `poll`.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32

    // Loop-thread state.
    private(set) var session: AMQPSession?
    private(set) var generation = 0
    private var endpointIndex = 0
    private var backoff: Backoff
    private var lastConnectError: AMQPError?
    private var everConnected = false
    private var confirms = ConfirmLedger<PublishTicket>()
    private var consumers: [String: ConsumerRecord] = [:]
    private var topology: [TopologyStep] = []
    private var stopped = false

    init(configuration: AMQPConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.backoff = configuration.reconnectBackoff
        // Without a pipe (no file descriptors left) the loop still works: it polls every 10 ms.
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        for fd in fds where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        self.wakeFD = fds[0]
        self.wakeWriteFD = fds[1]
        let thread = Thread { [self] in self.run() }
        thread.name = "amqp \(configuration.connectionName)"
        thread.start()
    }

    deinit {
        if wakeFD >= 0 { close(wakeFD) }
        if wakeWriteFD >= 0 { close(wakeWriteFD) }
    }

    // MARK: Entry points for other threads

    /// Queues a command and wakes the loop; fails it at once after `shutdown`.
    func submit(_ command: Command) {
        let accepted = commands.withLock { state -> Bool in
            guard !state.closing else { return false }
            state.queue.append(command)
            return true
        }
        guard accepted else { return command.fail(AMQPError(.closed, "the connection was closed")) }
        wake()
    }

    /// Runs `body` on the loop thread with a connected session and returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable (AMQPEventLoop, AMQPSession) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            submit(
                Command(
                    run: { loop in
                        guard let session = loop.session else {
                            return continuation.resume(throwing: AMQPError(.connectionLost, "not connected"))
                        }
                        do {
                            continuation.resume(returning: try body(loop, session))
                        } catch let error as AMQPError {
                            continuation.resume(throwing: error)
                            loop.teardownIfFatal(error)
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    },
                    fail: { continuation.resume(throwing: $0) }))
        }
    }

    /// Closes the connection politely and ends the thread; queued commands fail with `closed`.
    func shutdown() {
        commands.withLock { $0.closing = true }
        wake()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
    }

    // MARK: The loop

    private func run() {
        while true {
            let (batch, closing) = commands.withLock { state -> ([Command], Bool) in
                defer { state.queue.removeAll(keepingCapacity: true) }
                return (state.queue, state.closing)
            }
            if closing {
                finish(batch)
                return
            }
            if session == nil {
                if batch.isEmpty && !everConnected && consumers.isEmpty {
                    waitForWake(timeout: .seconds(1))
                    continue
                }
                guard connectRound() else {
                    for command in batch { command.fail(lastConnectError ?? AMQPError(.connectionFailed, "no broker reachable")) }
                    waitForWake(timeout: backoff.next())
                    continue
                }
            }
            for command in batch { command.run(self) }
            readAvailable()
            if session?.hasBufferedInput == true || commands.withLock({ !$0.queue.isEmpty }) { continue }
            waitForInput()
        }
    }

    /// Reads and handles every frame that is ready, then frees rabbitmq-c's read buffers.
    private func readAvailable() {
        guard let session else { return }
        do {
            reading: while true {
                switch try session.poll(generation: generation) {
                case .idle: break reading
                case .nothing: continue
                case .confirm(let tag, let multiple, let ack): settleConfirms(upTo: tag, multiple: multiple, ack: ack)
                case .returned(let code, let text, let exchange, let routingKey, let body):
                    confirms.returned(code: code, text: text, exchange: exchange, routingKey: routingKey, body: body)
                case .delivery(let consumerTag, let delivery):
                    if let consumer = consumers[consumerTag] {
                        consumer.continuation.yield(delivery)
                    } else if consumers.values.contains(where: { $0.channel == delivery.channel }) {
                        _ = session.settle(channel: delivery.channel, tag: delivery.tag, .reject(requeue: true))
                    }
                // Otherwise its consumer was cancelled and its channel closed: rabbitmq-c
                // queued the delivery while it waited for cancel-ok or close-ok. The broker
                // puts it back by itself, and a reject on the closed channel would make it
                // close the whole connection (504 CHANNEL_ERROR, "expected 'channel.open'").
                case .consumerCancelled(_, let consumerTag):
                    if let consumer = consumers.removeValue(forKey: consumerTag) {
                        logger.warning("the broker cancelled a consumer", metadata: ["queue": "\(consumer.queue)"])
                        consumer.continuation.finish(
                            throwing: AMQPError(
                                .consumerCancelled, "the broker cancelled the consumer of '\(consumer.queue)' (queue deleted?)"))
                        session.closeChannel(consumer.channel)
                    }
                case .channelClosed(let channel, let error):
                    channelClosed(channel, error)
                }
            }
            session.releaseBuffers()
        } catch let error as AMQPError {
            teardown(error)
        } catch {
            teardown(AMQPError(.library, "\(error)"))
        }
    }

    private func waitForInput() {
        guard let session else { return }
        let heartbeat = session.endpoint.heartbeat
        var timeout = heartbeat > .zero ? min(heartbeat / 4, .seconds(1)) : .seconds(1)
        if wakeFD < 0 { timeout = .milliseconds(10) }
        var fds = [
            pollfd(fd: session.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
        ]
        _ = poll(&fds, 2, Int32(timeout.seconds * 1000))
        drainWake()
    }

    private func waitForWake(timeout: Duration) {
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 1, Int32(timeout.seconds * 1000))
        drainWake()
    }

    private func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(wakeFD, &buffer, buffer.count) > 0 {}
    }

    private func finish(_ batch: [Command]) {
        stopped = true
        let closed = AMQPError(.closed, "the connection was closed")
        for command in batch { command.fail(closed) }
        failPendingConfirms(closed)
        for consumer in consumers.values { consumer.continuation.finish() }
        consumers.removeAll()
        session?.closeGracefully()
        session = nil
    }

    // MARK: Connecting

    /// One pass over the URL list, starting after the one that failed last. True when connected.
    private func connectRound() -> Bool {
        let endpoints = configuration.endpoints
        for offset in 0..<endpoints.count {
            let index = (endpointIndex + offset) % endpoints.count
            let endpoint = endpoints[index]
            do {
                let session = try AMQPSession.open(endpoint, configuration: configuration)
                self.session = session
                endpointIndex = index
                generation += 1
                // A new channel counts its confirms from 1 (teardown failed what the old one held).
                failPendingConfirms(AMQPError(.connectionLost, "the connection was replaced before the broker confirmed"))
                try restore(session)
                logger.info(
                    everConnected ? "reconnected to the broker" : "connected to the broker",
                    metadata: ["broker": "\(endpoint.displayName)"])
                everConnected = true
                lastConnectError = nil
                backoff.reset()
                return true
            } catch let error as AMQPError {
                session?.destroy()
                session = nil
                if lastConnectError?.message != error.message {
                    logger.warning("cannot connect to the broker", metadata: ["error": "\(error.message)"])
                }
                lastConnectError = error
                // A refused login will not change by trying the next node with the same user.
                if error.code == .authenticationFailed { break }
            } catch {
                session = nil
                lastConnectError = AMQPError(.connectionFailed, "\(error)")
            }
        }
        endpointIndex = (endpointIndex + 1) % endpoints.count
        return false
    }

    /// After a reconnect: declare again what was declared, and start every consumer again.
    private func restore(_ session: AMQPSession) throws {
        for step in topology { try step.apply(session) }
        for consumer in consumers.values {
            do {
                try session.startConsumer(
                    channel: consumer.channel, queue: consumer.queue, tag: consumer.tag,
                    prefetch: consumer.prefetch, arguments: consumer.arguments)
            } catch let error as AMQPError where error.code == .channelClosed {
                consumers[consumer.tag] = nil
                consumer.continuation.finish(throwing: error)
            }
        }
    }

    /// Drops the session after a connection-level failure; in-flight publishes fail (their
    /// outcome is unknown) and consumers wait for the reconnect.
    func teardown(_ error: AMQPError) {
        guard let session else { return }
        logger.warning("lost the broker connection", metadata: ["broker": "\(session.endpoint.displayName)", "error": "\(error.message)"])
        session.destroy()
        self.session = nil
        endpointIndex = (endpointIndex + 1) % configuration.endpoints.count
        failPendingConfirms(AMQPError(.connectionLost, "the connection was lost before the broker confirmed: \(error.message)"))
    }

    func teardownIfFatal(_ error: AMQPError) {
        if error.code == .connectionLost || error.code == .timeout || error.code == .library { teardown(error) }
    }

    private func channelClosed(_ channel: UInt16, _ error: AMQPError) {
        if channel == AMQPSession.publishChannel {
            // Publishing to a missing exchange closes the channel: every unconfirmed message
            // fails, and the channel reopens in confirm mode with tags from 1.
            failPendingConfirms(error)
            do {
                try session?.openChannel(channel)
                try session?.enableConfirms()
            } catch let reopenError as AMQPError {
                teardown(reopenError)
            } catch {}
        } else if let consumer = consumers.values.first(where: { $0.channel == channel }) {
            consumers[consumer.tag] = nil
            consumer.continuation.finish(throwing: error)
        }
    }

    // MARK: Topology

    /// Remembers a declaration so that it is replayed after a reconnect (once per name).
    func record(_ step: TopologyStep) {
        topology.removeAll { $0.key == step.key }
        topology.append(step)
    }

    func forget(key: String) {
        topology.removeAll { $0.key == key }
    }

    // MARK: Publishing

    func publish(_ messages: [OutgoingMessage], batch: PublishBatch) {
        guard let session else {
            return batch.failAll(AMQPError(.connectionLost, "not connected"))
        }
        for (index, message) in messages.enumerated() {
            let status = session.publish(message)
            guard status == 0 else {
                let error = AMQPError(.connectionLost, "\(session.endpoint.displayName): cannot publish: \(AMQPSession.statusText(status))")
                batch.fail(from: index, error)
                return teardown(error)
            }
            confirms.published(
                exchange: message.exchange, routingKey: message.routingKey, body: message.body,
                ticket: PublishTicket(batch: batch, index: index))
        }
    }

    private func settleConfirms(upTo tag: UInt64, multiple: Bool, ack: Bool) {
        for settled in confirms.confirmed(upTo: tag, multiple: multiple, ack: ack) {
            settled.ticket.batch.settle(settled.ticket.index, .success(settled.outcome))
        }
    }

    private func failPendingConfirms(_ error: AMQPError) {
        for ticket in confirms.reset() { ticket.batch.settle(ticket.index, .failure(error)) }
    }

    // MARK: Consumers

    func addConsumer(
        queue: String, prefetch: UInt16, arguments: AMQPTable,
        continuation: AsyncThrowingStream<AMQPDelivery, Error>.Continuation
    ) throws -> String {
        guard let session else { throw AMQPError(.connectionLost, "not connected") }
        let used = Set(consumers.values.map(\.channel))
        guard let channel = (UInt16(3)...UInt16(2047)).first(where: { !used.contains($0) }) else {
            throw AMQPError(.library, "too many consumers on one connection")
        }
        let tag = "fog-\(configuration.connectionName)-\(channel)-\(UUID().uuidString.prefix(8))"
        try session.startConsumer(channel: channel, queue: queue, tag: tag, prefetch: prefetch, arguments: arguments)
        consumers[tag] = ConsumerRecord(
            tag: tag, queue: queue, channel: channel, prefetch: prefetch,
            arguments: arguments, continuation: continuation)
        return tag
    }

    func cancelConsumer(tag: String) {
        guard let consumer = consumers.removeValue(forKey: tag) else { return }
        session?.cancelConsumer(channel: consumer.channel, tag: tag)
        consumer.continuation.finish()
    }

    /// Settles a delivery on the channel it came from. A delivery from an earlier connection
    /// cannot be settled any more: the broker has already put it back for redelivery.
    func settle(_ delivery: AMQPDelivery, _ settlement: AMQPSession.Settlement) throws {
        guard let session, delivery.generation == generation else {
            logger.debug("ignoring the settlement of a delivery from a closed connection")
            return
        }
        let status = session.settle(channel: delivery.channel, tag: delivery.tag, settlement)
        guard status == 0 else {
            throw AMQPError(.connectionLost, "cannot acknowledge: \(AMQPSession.statusText(status))")
        }
    }
}

/// Whom to tell when a publish is confirmed: its batch, and its place in it.
struct PublishTicket {
    let batch: PublishBatch
    let index: Int
}

/// A consumer that lives across reconnects.
struct ConsumerRecord {
    let tag: String
    let queue: String
    let channel: UInt16
    let prefetch: UInt16
    let arguments: AMQPTable
    let continuation: AsyncThrowingStream<AMQPDelivery, Error>.Continuation
}

/// A declaration remembered for replay after a reconnect.
struct TopologyStep: Sendable {
    let key: String
    let apply: @Sendable (AMQPSession) throws -> Void
}

/// Collects the outcomes of messages published together and resumes the caller once all are known.
/// Touched only on the loop thread.
final class PublishBatch: @unchecked Sendable {
    private var results: [Result<PublishOutcome, AMQPError>?]
    private var remaining: Int
    private let continuation: CheckedContinuation<[Result<PublishOutcome, AMQPError>], Never>

    init(count: Int, continuation: CheckedContinuation<[Result<PublishOutcome, AMQPError>], Never>) {
        results = Array(repeating: nil, count: count)
        remaining = count
        self.continuation = continuation
        if count == 0 { continuation.resume(returning: []) }
    }

    func settle(_ index: Int, _ result: Result<PublishOutcome, AMQPError>) {
        guard results[index] == nil else { return }
        results[index] = result
        remaining -= 1
        if remaining == 0 { continuation.resume(returning: results.map { $0! }) }
    }

    func fail(from index: Int, _ error: AMQPError) {
        for position in index..<results.count { settle(position, .failure(error)) }
    }

    func failAll(_ error: AMQPError) { fail(from: 0, error) }
}
