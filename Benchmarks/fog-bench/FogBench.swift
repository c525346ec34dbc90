import AMQPClient
import ArgumentParser
import Foundation

/// `fog-bench clients`: AMQPClient's confirmed-publish and consume rates against a quorum queue.
/// `make bench-clients` runs it beside the same measurement made with Python's pika.
@main
struct FogBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fog-bench", abstract: "Benchmarks of FogScheduler and its clients (make bench, make bench-clients).",
        subcommands: [Clients.self, Raw.self, Throughput.self, Latency.self])

    /// `fog-bench raw`: the broker's own limit for the work a task makes there: persistent
    /// messages published with confirms to a quorum queue while a consumer takes and acks them,
    /// both at once. `make bench` sets the end-to-end rate against it.
    struct Raw: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Confirmed persistent publishes and consume-with-ack at once, on one quorum queue: messages a second.")

        @Option(help: "Broker URLs, comma-separated (default: $FOG_BROKER_URL).")
        var brokerURL: String?
        @Option(help: "Queue to use; it is declared as a quorum queue, purged first and deleted after.")
        var queue = "fog.bench.raw"
        @Option(help: "How many messages.")
        var messages = 20_000
        @Option(help: "Message body size in bytes (a task message is about 400).")
        var size = 400
        @Option(help: "Publishes in flight (unconfirmed) at most.")
        var window = 1_000
        @Option(help: "Consumer prefetch; acks go every 50 deliveries, with multiple.")
        var prefetch: UInt16 = 1_000

        func run() async throws {
            guard (1...10_000_000).contains(messages), (1...100_000).contains(window), (0...1_000_000).contains(size) else {
                throw ValidationError("--messages 1-10000000, --window 1-100000, --size 0-1000000")
            }
            let pair = try await BrokerPair.connect(urls: brokerURL, name: "bench-raw", queue: queue)
            defer { pair.close() }
            let consumer = try await pair.consumer.consume(queue: queue, prefetch: prefetch)
            let count = messages
            let start = ContinuousClock.now
            async let published: Void = pair.publishAll(count: count, size: size, window: window)
            var received = 0
            for try await delivery in consumer {
                received += 1
                if received % 50 == 0 || received == count { try await pair.consumer.ack(delivery, multiple: true) }
                if received == count { break }
            }
            try await published
            let seconds = (ContinuousClock.now - start).seconds
            await consumer.cancel()
            _ = try? await pair.publisher.deleteQueue(queue)
            try printJSON(["bench": "raw", "messages": count, "size": size, "window": window, "prefetch": Int(prefetch),
                           "seconds": (seconds * 1000).rounded() / 1000, "per_s": (Double(count) / seconds).rounded()])
        }
    }

    struct Clients: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish N persistent messages with confirms to a quorum queue, then consume and ack them all.")

        @Option(help: "Broker URLs, comma-separated (default: $FOG_BROKER_URL).")
        var brokerURL: String?
        @Option(help: "Queue to use; it is declared as a quorum queue and purged first.")
        var queue = "fog.bench.clients"
        @Option(help: "How many messages.")
        var messages = 20_000
        @Option(help: "Message body size in bytes.")
        var size = 256
        @Option(help: "Publishes in flight (unconfirmed) at most.")
        var window = 1_000
        @Option(help: "Consumer prefetch.")
        var prefetch: UInt16 = 500

        func run() async throws {
            guard messages > 0, window > 0, size >= 0 else { throw ValidationError("messages and window must be > 0") }
            let pair = try await BrokerPair.connect(urls: brokerURL, name: "bench", queue: queue)
            defer { pair.close() }
            let publishStart = ContinuousClock.now
            try await pair.publishAll(count: messages, size: size, window: window)
            let publishSeconds = (ContinuousClock.now - publishStart).seconds

            let consumeStart = ContinuousClock.now
            var received = 0
            let consumer = try await pair.consumer.consume(queue: queue, prefetch: prefetch)
            for try await delivery in consumer {
                try await pair.consumer.ack(delivery)
                received += 1
                if received == messages { break }
            }
            let consumeSeconds = (ContinuousClock.now - consumeStart).seconds
            await consumer.cancel()

            let result: [String: Any] = [
                "client": "swift-AMQPClient", "messages": messages, "size": size, "window": window, "prefetch": Int(prefetch),
                "publish_per_s": (Double(messages) / publishSeconds).rounded(),
                "consume_per_s": (Double(received) / consumeSeconds).rounded(),
            ]
            try printJSON(result)
        }
    }
}

/// A publisher and a consumer connection to one quorum queue, declared and purged.
struct BrokerPair {
    let publisher: AMQPConnection
    let consumer: AMQPConnection
    let queue: String

    /// `urls`: the --broker-url option, or else $FOG_BROKER_URL.
    static func connect(urls option: String?, name: String, queue: String) async throws -> BrokerPair {
        guard let urls = option ?? ProcessInfo.processInfo.environment["FOG_BROKER_URL"] else {
            throw ValidationError("give --broker-url or set FOG_BROKER_URL")
        }
        let configuration = try AMQPConfiguration(urls: urls, connectionName: "\(name)-publisher")
        let publisher = try await AMQPConnection.connect(configuration)
        var consumerConfiguration = configuration
        consumerConfiguration.connectionName = "\(name)-consumer"
        let consumer: AMQPConnection
        do { consumer = try await AMQPConnection.connect(consumerConfiguration) } catch { publisher.close(); throw error }
        let pair = BrokerPair(publisher: publisher, consumer: consumer, queue: queue)
        do {
            try await publisher.declareQueue(queue, arguments: .quorumQueue())
            _ = try await publisher.purgeQueue(queue)
        } catch {
            pair.close()
            throw error
        }
        return pair
    }

    func close() {
        publisher.close()
        consumer.close()
    }

    /// Publishes `count` persistent messages of `size` bytes with confirms through a sliding
    /// window, as pika's: chunks of 100 in flight on `window / 100` tasks, each sending its next
    /// chunk as soon as the previous one is confirmed.
    func publishAll(count: Int, size: Int, window: Int) async throws {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        let chunk = min(100, window)
        let lanes = max(1, window / chunk)
        let publisher = self.publisher, queue = self.queue
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    var first = lane * chunk
                    while first < count {
                        let batch = (0..<min(chunk, count - first)).map { _ in OutgoingMessage(exchange: "", routingKey: queue, body: body) }
                        for result in await publisher.publish(batch) {
                            guard case .success(.ack) = result else { throw ValidationError("publish not acked: \(result)") }
                        }
                        first += lanes * chunk
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

extension Duration {
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
