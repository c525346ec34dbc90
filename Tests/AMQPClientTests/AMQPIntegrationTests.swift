import Foundation
import TestSupport
import Testing

@testable import AMQPClient

/// Against the real 3-node RabbitMQ cluster of the test services (vhost fog).
@Suite(TestServices.required, .serialized)
struct AMQPIntegrationTests {
    let queue = "test.amqp.\(UUID().uuidString.prefix(8).lowercased())"

    func connect(_ urls: [String] = TestServices.brokerURLs, name: String = "test") async throws -> AMQPConnection {
        try await AMQPConnection.connect(AMQPConfiguration(urls: urls.joined(separator: ","), connectionName: name))
    }

    @Test func tenThousandConfirmedMessagesThroughA3NodeQuorumQueue() async throws {
        let publisher = try await connect(name: "test-publisher")
        let consumer = try await connect(name: "test-consumer")
        defer {
            publisher.close()
            consumer.close()
        }
        try await publisher.declareQueue(queue, arguments: .quorumQueue(deliveryLimit: 10, overflow: .rejectPublish))
        #expect(Set(try TestServices.quorumMembers(queue)) == ["rmq1@localhost", "rmq2@localhost", "rmq3@localhost"])

        let count = 10_000
        var confirmed = 0
        for start in stride(from: 0, to: count, by: 1_000) {
            let batch = (start..<start + 1_000).map {
                OutgoingMessage(exchange: "", routingKey: queue, body: Array("message \($0)".utf8))
            }
            for result in await publisher.publish(batch) where (try? result.get()) == .ack { confirmed += 1 }
        }
        #expect(confirmed == count)
        #expect(try await publisher.queueInfo(queue).messageCount == count)

        var seen = Set<String>()
        let deliveries = try await consumer.consume(queue: queue, prefetch: 200)
        for try await delivery in deliveries {
            #expect(delivery.properties.persistent)
            seen.insert(String(decoding: delivery.body, as: UTF8.self))
            try await consumer.ack(delivery)
            if seen.count == count { break }
        }
        await deliveries.cancel()
        #expect(seen.count == count)
        try await waitUntil { try await publisher.queueInfo(queue).messageCount == 0 }
        try await publisher.deleteQueue(queue)
    }

    @Test func aFullQueueNacksAndAnUnroutableMessageComesBack() async throws {
        let connection = try await connect()
        defer { connection.close() }
        var arguments = AMQPTable.quorumQueue(overflow: .rejectPublish)
        arguments["x-max-length"] = .int(1)
        try await connection.declareQueue(queue, arguments: arguments)

        // A quorum queue checks its limit after each enqueue: it takes the message that reaches
        // the limit, then refuses the next ones with a nack until it has room again.
        var outcomes: [PublishOutcome] = []
        for index in 0..<3 {
            outcomes.append(try await connection.publish(Array("m\(index)".utf8), exchange: "", routingKey: queue))
        }
        #expect(outcomes.first == .ack)
        #expect(outcomes.last == .nack)
        #expect(try await connection.queueInfo(queue).messageCount <= 2)
        let returned = try await connection.publish(Array("nowhere".utf8), exchange: "", routingKey: "no.such.queue")
        #expect(returned == .returned(replyCode: 312, replyText: "NO_ROUTE"))
        // Without mandatory, the same message is dropped by the broker but still acked.
        #expect(try await connection.publish(Array("nowhere".utf8), exchange: "", routingKey: "no.such.queue", mandatory: false) == .ack)
        try await connection.deleteQueue(queue)
    }

    @Test func aMissingExchangeFailsThatPublishOnlyAndTheChannelRecovers() async throws {
        let connection = try await connect()
        defer { connection.close() }
        try await connection.declareQueue(queue, arguments: .quorumQueue())
        await #expect {
            try await connection.publish(Array("x".utf8), exchange: "no.such.exchange", routingKey: "k")
        } throws: { error in
            (error as? AMQPError)?.replyCode == 404
        }
        #expect(try await connection.publish(Array("after".utf8), exchange: "", routingKey: queue) == .ack)
        // The control channel recovers from a 404 the same way.
        await #expect(throws: AMQPError.self) { try await connection.queueInfo("no.such.queue") }
        #expect(try await connection.queueInfo(queue).messageCount == 1)
        try await connection.deleteQueue(queue)
    }

    @Test func getPurgeRejectAndDeadLettering() async throws {
        let connection = try await connect()
        defer { connection.close() }
        let dlx = queue + ".dlx"
        let dead = queue + ".dead"
        try await connection.declareExchange(dlx, kind: .fanout)
        try await connection.declareQueue(dead, arguments: .quorumQueue())
        try await connection.bindQueue(dead, to: dlx, routingKey: "")
        try await connection.declareQueue(queue, arguments: .quorumQueue(deadLetterExchange: dlx))
        #expect(try await connection.get(queue: queue) == nil)
        var properties = AMQPProperties.json
        properties.headers = ["x-fog-index": .int(0)]
        properties.messageID = "m0"
        _ = try await connection.publish(OutgoingMessage(exchange: "", routingKey: queue, body: Array("0".utf8), properties: properties))
        // Requeued by a nack: the message comes back, marked redelivered and counted.
        let first = try #require(try await connection.get(queue: queue))
        #expect(first.properties.messageID == "m0")
        #expect(first.properties.headers["x-fog-index"] == .int(0))
        #expect(!first.redelivered)
        try await connection.nack(first, requeue: true)
        let again = try #require(try await connection.get(queue: queue))
        #expect(again.body == first.body && again.redelivered && again.deliveryCount == 1)
        // Rejected without requeue: dead-lettered, never silently dropped.
        try await connection.reject(again, requeue: false)
        try await waitUntil { try await connection.queueInfo(dead).messageCount == 1 }
        let deadLetter = try #require(try await connection.get(queue: dead))
        #expect(deadLetter.body == Array("0".utf8))
        try await connection.ack(deadLetter)
        for index in 1...2 { _ = try await connection.publish(Array("\(index)".utf8), exchange: "", routingKey: queue) }
        #expect(try await connection.purgeQueue(queue) == 2)
        #expect(try await connection.queueInfo(queue).messageCount == 0)
        try await connection.deleteQueue(queue)
        try await connection.deleteQueue(dead)
        try await connection.deleteExchange(dlx)
    }

    @Test func aWrongPasswordAnUnreachableHostAndAMissingVhostAreClearErrors() async throws {
        let good = try AMQPEndpoint(url: TestServices.brokerURLs[0])
        var wrongPassword = good
        wrongPassword.password = "definitely-wrong"
        await #expect {
            try await AMQPConnection.connect(AMQPConfiguration(endpoints: [wrongPassword]))
        } throws: { error in
            (error as? AMQPError)?.code == .authenticationFailed && !"\(error)".contains("definitely-wrong")
        }
        var missingVhost = good
        missingVhost.vhost = "no-such-vhost"
        await #expect {
            try await AMQPConnection.connect(AMQPConfiguration(endpoints: [missingVhost]))
        } throws: { error in
            (error as? AMQPError)?.code == .authenticationFailed
        }
        var unreachable = good
        unreachable.port = 1
        await #expect {
            try await AMQPConnection.connect(AMQPConfiguration(endpoints: [unreachable]))
        } throws: { error in
            (error as? AMQPError)?.code == .connectionFailed
        }
    }

    @Test func tlsWithTheCAAndAClientCertificate() async throws {
        let url = TestServices.brokerTLSURL
        try #require(!url.isEmpty, "the test services have no TLS listener")
        let connection = try await connect([url], name: "test-tls")
        defer { connection.close() }
        #expect(try await connection.currentBroker().hasPrefix("amqps://localhost:"))
        try await connection.declareQueue(queue, arguments: .quorumQueue())
        #expect(try await connection.publish(Array("over TLS".utf8), exchange: "", routingKey: queue) == .ack)
        let message = try #require(try await connection.get(queue: queue))
        #expect(message.body == Array("over TLS".utf8))
        try await connection.ack(message)
        try await connection.deleteQueue(queue)
    }

    @Test func tlsRefusesAServerItCannotVerify() async throws {
        var endpoint = try AMQPEndpoint(url: TestServices.brokerTLSURL)
        // The server's certificate was not issued by this CA: the client certificate's file is no CA of it.
        endpoint.tls?.caCertificateFile = TestServices.tlsDirectory + "/client.pem"
        await #expect {
            try await AMQPConnection.connect(AMQPConfiguration(endpoints: [endpoint]))
        } throws: { error in
            (error as? AMQPError)?.code == .connectionFailed
        }
        // Verification checks the name too: the certificate is for "localhost" only, so the same
        // listener reached as 127.0.0.1 is refused.
        var wrongName = try AMQPEndpoint(url: TestServices.brokerTLSURL)
        wrongName.host = "127.0.0.1"
        await #expect {
            try await AMQPConnection.connect(AMQPConfiguration(endpoints: [wrongName]))
        } throws: { error in
            (error as? AMQPError)?.code == .connectionFailed
        }
    }

    /// Deliveries that arrive while a cancel waits for its reply belong to a closed channel:
    /// the broker requeues them itself, and settling them would close the whole connection.
    @Test func cancellingABusyConsumerKeepsTheConnection() async throws {
        let connection = try await connect(name: "test-cancel")
        defer { connection.close() }
        try await connection.declareQueue(queue, arguments: .quorumQueue())
        let body = Array(repeating: UInt8(ascii: "x"), count: 512)
        let results = await connection.publish((0..<3_000).map { _ in OutgoingMessage(exchange: "", routingKey: queue, body: body) })
        #expect(results.allSatisfy { if case .success(.ack) = $0 { true } else { false } })
        var generations: [Int] = []
        for _ in 0..<5 {
            let deliveries = try await connection.consume(queue: queue, prefetch: 1_000)
            for try await delivery in deliveries {
                generations.append(delivery.generation)
                try await connection.ack(delivery)
                break
            }
            await deliveries.cancel()
            // The next call must find the connection open, not closed by the broker.
            _ = try await connection.queueInfo(queue)
        }
        #expect(generations.count == 5 && Set(generations).count == 1, "the connection was re-established: \(generations)")
        try await connection.deleteQueue(queue)
    }

    @Test func aDeadFirstURLIsSkipped() async throws {
        let dead = TestServices.brokerURLs[0].replacingOccurrences(of: ":5782/", with: ":1/")
        let connection = try await connect([dead] + TestServices.brokerURLs.dropFirst(), name: "test-skip")
        defer { connection.close() }
        #expect(try await connection.currentBroker() == "amqp://127.0.0.1:5783/fog")
    }

    /// kill -9 the node the publisher is connected to, mid-stream. The publisher moves to
    /// another URL; every message it saw confirmed is consumed at least once.
    @Test(.timeLimit(.minutes(4)))
    func publisherSurvivesTheDeathOfItsNode() async throws {
        let urls = TestServices.brokerURLs
        // The publisher starts on rmq2; the consumer and the admin connection on rmq3.
        let publisher = try await connect([urls[1], urls[2], urls[0]], name: "test-failover-publisher")
        let consumer = try await connect([urls[2], urls[0], urls[1]], name: "test-failover-consumer")
        defer {
            publisher.close()
            consumer.close()
        }
        #expect(try await publisher.currentBroker() == "amqp://127.0.0.1:5783/fog")
        try await consumer.declareQueue(queue, arguments: .quorumQueue())

        let total = 10_000
        var confirmed = Set<Int>()
        var killer: Task<Void, Error>?
        var retries = 0
        var longestStall = Duration.zero
        var next = Array(0..<total)
        while !next.isEmpty {
            let ids = Array(next.prefix(250))
            next.removeFirst(ids.count)
            let messages = ids.map { id -> OutgoingMessage in
                var properties = AMQPProperties.json
                properties.messageID = String(id)
                return OutgoingMessage(exchange: "", routingKey: queue, body: Array("\(id)".utf8), properties: properties)
            }
            let started = ContinuousClock.now
            for (id, result) in zip(ids, await publisher.publish(messages)) {
                if case .success(.ack) = result {
                    confirmed.insert(id)
                } else {
                    next.append(id)  // unknown outcome: publish again (consumers deduplicate)
                    retries += 1
                }
            }
            longestStall = max(longestStall, .now - started)
            if killer == nil && confirmed.count >= 2_000 {
                // Killed from another task, so that it lands while publishes are in flight.
                killer = Task.detached { try TestServices.kill("rmq2") }
            }
        }
        try await killer?.value
        do {
            try await checkFailover(
                publisher: publisher, consumer: consumer, confirmed: confirmed, total: total,
                retries: retries, longestStall: longestStall)
        } catch {
            // Whatever failed, the next tests need the node back.
            try? TestServices.start("rmq2")
            throw error
        }
        #expect(killer != nil)

        // Bring the node back; it rejoins the cluster on its own.
        try TestServices.start("rmq2")
        let reconnected = try await connect([urls[1]], name: "test-after-restart")
        #expect(try await reconnected.currentBroker() == "amqp://127.0.0.1:5783/fog")
        reconnected.close()
    }

    private func checkFailover(
        publisher: AMQPConnection, consumer: AMQPConnection, confirmed: Set<Int>, total: Int,
        retries: Int, longestStall: Duration
    ) async throws {
        #expect(confirmed.count == total)
        #expect(try await publisher.currentBroker() != "amqp://127.0.0.1:5783/fog")
        print("failover: \(retries) publishes without a confirm were retried; longest publish stall \(longestStall)")

        var seen = Set<Int>()
        let deliveries = try await consumer.consume(queue: queue, prefetch: 500)
        for try await delivery in deliveries {
            if let id = Int(String(decoding: delivery.body, as: UTF8.self)) { seen.insert(id) }
            try await consumer.ack(delivery)
            if seen.isSuperset(of: confirmed) { break }
        }
        await deliveries.cancel()
        #expect(seen.isSuperset(of: confirmed))
        try await consumer.deleteQueue(queue)
    }

    private func waitUntil(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within \(timeout)")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
