import AMQPClient
import Testing

@Suite struct AMQPConfigurationTests {
    @Test func parsesAPlainURL() throws {
        let endpoint = try AMQPEndpoint(url: "amqp://fog:p%2Fw@rmq1:5772/fog?heartbeat=10&connection_timeout=2500")
        #expect(endpoint.host == "rmq1")
        #expect(endpoint.port == 5772)
        #expect(endpoint.vhost == "fog")
        #expect(endpoint.user == "fog")
        #expect(endpoint.password == "p/w")
        #expect(endpoint.heartbeat == .seconds(10))
        #expect(endpoint.connectTimeout == .milliseconds(2500))
        #expect(endpoint.tls == nil)
    }

    @Test func anEmptyPathIsTheDefaultVhostAndAMQPSDefaultsTo5671() throws {
        let endpoint = try AMQPEndpoint(url: "amqps://u:p@broker?cacertfile=/ca.pem&certfile=/c.pem&keyfile=/k.pem")
        #expect(endpoint.vhost == "/")
        #expect(endpoint.port == 5671)
        #expect(endpoint.tls == AMQPEndpoint.TLS(caCertificateFile: "/ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem"))
        let encoded = try AMQPEndpoint(url: "amqp://u:p@broker/%2F")
        #expect(encoded.vhost == "/")
    }

    @Test func aListOfURLsKeepsItsOrder() throws {
        let configuration = try AMQPConfiguration(urls: "amqp://u:p@a:1/fog, amqp://u:p@b:2/fog,amqp://u:p@c:3/fog")
        #expect(configuration.endpoints.map(\.host) == ["a", "b", "c"])
    }

    @Test(arguments: [
        "", "http://u:p@h/fog", "amqp://h/fog", "amqp://u@h/fog", "amqp://u:p@h/fog?heartbeat=-1",
        "amqp://u:p@h/fog?cacertfile=/x", "amqps://u:p@h?verify=maybe", "amqps://u:p@h?certfile=/c",
        "amqp://u:p@h:0/fog", "amqp://u:p@h/fog,not-a-url",
    ])
    func refusesMalformedURLs(urls: String) {
        #expect {
            try AMQPConfiguration(urls: urls)
        } throws: { error in
            (error as? AMQPError)?.code == .invalidURL
        }
    }

    @Test func quorumArgumentsAreSpelledAsRabbitMQExpects() {
        let arguments = AMQPTable.quorumQueue(deliveryLimit: 5, deadLetterExchange: "fog.dlx", overflow: .rejectPublish)
        #expect(arguments["x-queue-type"] == .string("quorum"))
        #expect(arguments["x-delivery-limit"] == .int(5))
        #expect(arguments["x-dead-letter-exchange"] == .string("fog.dlx"))
        #expect(arguments["x-overflow"] == .string("reject-publish"))
    }
}
