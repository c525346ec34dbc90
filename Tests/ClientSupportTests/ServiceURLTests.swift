import ClientSupport
import Testing

@Suite struct ServiceURLTests {
    @Test func parsesEveryPart() throws {
        let url = try ServiceURL(parsing: "redis://fog:p%40ss@127.0.0.1:6390/2?timeout=3", schemes: ["redis"])
        #expect(url.scheme == "redis")
        #expect(url.host == "127.0.0.1")
        #expect(url.port == 6390)
        #expect(url.user == "fog")
        #expect(url.password == "p@ss")
        #expect(url.path == "2")
        #expect(url.query == ["timeout": "3"])
    }

    @Test func ipv6HostsLoseTheirBrackets() throws {
        let url = try ServiceURL(parsing: "amqp://u:p@[::1]:5672/fog", schemes: ["amqp"])
        #expect(url.host == "::1")
    }

    @Test(arguments: [
        ("http://h:1/x", "the scheme must be redis://"),
        ("redis://:6379", "no host"),
        ("redis://h:99999", "out of range"),
        ("not a url at all", "scheme"),
    ])
    func refusesMalformedURLs(text: String, reason: String) {
        #expect {
            try ServiceURL(parsing: text, schemes: ["redis"])
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func masksPasswordsInMessages() {
        #expect(ServiceURL.mask("amqp://fog:secret@h:1/fog") == "amqp://fog:***@h:1/fog")
        #expect(ServiceURL.mask("amqp://h:1/fog") == "amqp://h:1/fog")
        #expect(ServiceURL.mask("postgres://u:p@ss@h/db") == "postgres://u:***@h/db")
    }
}
