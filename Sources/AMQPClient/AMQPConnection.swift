import Logging

/// A connection to a RabbitMQ cluster over rabbitmq-c, with a thread of its own.
///
/// It tries the configured URLs in turn and, when the connection breaks, reconnects with
/// backoff to the next one, declares again what was declared and restarts its consumers.
/// Calls in flight at the break fail with `connectionLost` (their outcome is unknown: retry).
/// Publishing uses publisher confirms with many messages in flight; consumers use manual acks.
/// As the design requires, use one connection to publish and another to consume.
public final class AMQPConnection: Sendable {
    public let configuration: AMQPConfiguration
    private let loop: AMQPEventLoop

    public init(configuration: AMQPConfiguration, logger: Logger = Logger(label: "fog.amqp")) {
        self.configuration = configuration
        self.loop = AMQPEventLoop(configuration: configuration, logger: logger)
    }

    /// Connects now, so that a wrong password or an unreachable broker shows at once.
    public static func connect(
        _ configuration: AMQPConfiguration, logger: Logger = Logger(label: "fog.amqp")
    ) async throws -> AMQPConnection {
        let connection = AMQPConnection(configuration: configuration, logger: logger)
        do {
            try await connection.loop.perform { _, _ in }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    deinit { loop.shutdown() }

    /// Closes the connection; consumers finish and unconfirmed publishes fail with `closed`.
    public func close() { loop.shutdown() }

    /// Drops the broker connection and connects again, to the next URL. For a caller that sees
    /// a broker keep refusing what it should take: RabbitMQ 3.10 was seen to nack every publish
    /// on a channel that published to a quorum queue while its leader moved, until reopened.
    /// Calls in flight fail with `connectionLost`.
    public func reconnect(because reason: String) async {
        _ = try? await loop.perform { loop, _ in loop.teardown(AMQPError(.connectionLost, reason)) }
    }

    /// The broker this connection is using now, as `amqp://host:port/vhost`, or nil.
    public func currentBroker() async throws -> String {
        try await loop.perform { _, session in session.endpoint.displayName }
    }

    // MARK: Topology

    /// Declares an exchange (and declares it again after every reconnect).
    public func declareExchange(
        _ name: String, kind: ExchangeKind, durable: Bool = true, autoDelete: Bool = false,
        arguments: AMQPTable = [:]
    ) async throws {
        let step = TopologyStep(key: "exchange \(name)") {
            try $0.declareExchange(name, kind: kind, durable: durable, autoDelete: autoDelete, arguments: arguments)
        }
        try await loop.perform { loop, session in
            try step.apply(session)
            loop.record(step)
        }
    }

    /// Declares a queue (and again after every reconnect); returns its counts.
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: AMQPTable = [:]
    ) async throws -> QueueInfo {
        let step = TopologyStep(key: "queue \(name)") {
            _ = try $0.declareQueue(
                name, passive: false, durable: durable, exclusive: exclusive, autoDelete: autoDelete, arguments: arguments)
        }
        return try await loop.perform { loop, session in
            let info = try session.declareQueue(
                name, passive: false, durable: durable, exclusive: exclusive,
                autoDelete: autoDelete, arguments: arguments)
            loop.record(step)
            return info
        }
    }

    /// Binds a queue to an exchange (and again after every reconnect).
    public func bindQueue(_ queue: String, to exchange: String, routingKey: String, arguments: AMQPTable = [:]) async throws {
        let step = TopologyStep(key: "bind \(queue) \(exchange) \(routingKey)") {
            try $0.bindQueue(queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
        }
        try await loop.perform { loop, session in
            try step.apply(session)
            loop.record(step)
        }
    }

    /// The queue's ready-message and consumer counts (a passive declare); `channelClosed`
    /// with reply 404 when it does not exist.
    public func queueInfo(_ name: String) async throws -> QueueInfo {
        try await loop.perform { _, session in
            try session.declareQueue(name, passive: true, durable: false, exclusive: false, autoDelete: false, arguments: [:])
        }
    }

    /// Removes every ready message; returns how many there were.
    @discardableResult
    public func purgeQueue(_ name: String) async throws -> Int {
        try await loop.perform { _, session in try session.purgeQueue(name) }
    }

    /// Deletes a queue; returns how many messages it held.
    @discardableResult
    public func deleteQueue(_ name: String) async throws -> Int {
        try await loop.perform { loop, session in
            loop.forget(key: "queue \(name)")
            return try session.deleteQueue(name)
        }
    }

    public func deleteExchange(_ name: String) async throws {
        try await loop.perform { loop, session in
            loop.forget(key: "exchange \(name)")
            try session.deleteExchange(name)
        }
    }

    // MARK: Publishing

    /// Publishes one message and waits for the broker's confirm.
    public func publish(_ message: OutgoingMessage) async throws -> PublishOutcome {
        try await publish([message])[0].get()
    }

    public func publish(
        _ body: [UInt8], exchange: String, routingKey: String, properties: AMQPProperties = .json,
        mandatory: Bool = true
    ) async throws -> PublishOutcome {
        try await publish(
            OutgoingMessage(
                exchange: exchange, routingKey: routingKey, body: body,
                properties: properties, mandatory: mandatory))
    }

    /// Publishes all messages without waiting between them, then waits for every confirm.
    /// Each message gets its own outcome; a failure (connection lost before the confirm)
    /// means the broker may or may not have it: publish it again, consumers deduplicate.
    public func publish(_ messages: [OutgoingMessage]) async -> [Result<PublishOutcome, AMQPError>] {
        let loop = self.loop
        return await withCheckedContinuation { continuation in
            let batch = PublishBatch(count: messages.count, continuation: continuation)
            guard !messages.isEmpty else { return }
            loop.submit(
                AMQPEventLoop.Command(
                    run: { loop in loop.publish(messages, batch: batch) },
                    fail: { error in batch.failAll(error) }))
        }
    }

    // MARK: Consuming

    /// Starts a consumer with manual acknowledgements and at most `prefetch` unacked messages.
    /// The consumer survives reconnects (unacked messages are then redelivered).
    public func consume(queue: String, prefetch: UInt16 = 50, arguments: AMQPTable = [:]) async throws -> AMQPConsumer {
        let (stream, continuation) = AsyncThrowingStream<AMQPDelivery, Error>.makeStream()
        let tag = try await loop.perform { loop, _ in
            try loop.addConsumer(queue: queue, prefetch: prefetch, arguments: arguments, continuation: continuation)
        }
        let loop = self.loop
        continuation.onTermination = { _ in
            loop.submit(AMQPEventLoop.Command(run: { $0.cancelConsumer(tag: tag) }, fail: { _ in }))
        }
        return AMQPConsumer(stream: stream, tag: tag, connection: self)
    }

    /// Fetches one message (basic.get), or nil when the queue is empty. Settle it like any delivery.
    public func get(queue: String) async throws -> AMQPDelivery? {
        try await loop.perform { loop, session in try session.get(queue, generation: loop.generation) }
    }

    public func ack(_ delivery: AMQPDelivery, multiple: Bool = false) async throws {
        try await settle(delivery, .ack(multiple: multiple))
    }

    /// Negative acknowledgement: requeue it, or (requeue false) dead-letter or drop it.
    public func nack(_ delivery: AMQPDelivery, multiple: Bool = false, requeue: Bool) async throws {
        try await settle(delivery, .nack(multiple: multiple, requeue: requeue))
    }

    public func reject(_ delivery: AMQPDelivery, requeue: Bool) async throws {
        try await settle(delivery, .reject(requeue: requeue))
    }

    private func settle(_ delivery: AMQPDelivery, _ settlement: AMQPSession.Settlement) async throws {
        try await loop.perform { loop, _ in try loop.settle(delivery, settlement) }
    }

    func cancel(consumerTag: String) async {
        _ = try? await loop.perform { loop, _ in loop.cancelConsumer(tag: consumerTag) }
    }
}

/// The deliveries of one consumer, as an async sequence. It ends when the consumer is
/// cancelled or the connection is closed, and throws when the broker cancels it.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery
    private let stream: AsyncThrowingStream<AMQPDelivery, Error>
    public let tag: String
    private let connection: AMQPConnection

    init(stream: AsyncThrowingStream<AMQPDelivery, Error>, tag: String, connection: AMQPConnection) {
        self.stream = stream
        self.tag = tag
        self.connection = connection
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<AMQPDelivery, Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }

    /// Stops the deliveries; unacked ones go back to the queue.
    public func cancel() async {
        await connection.cancel(consumerTag: tag)
    }
}
