import RedisClient
import Testing

@Suite struct RedisConfigurationTests {
    @Test func parsesUserPasswordPortAndDatabase() throws {
        let configuration = try RedisConfiguration(url: "redis://fog:s3cret@10.0.0.5:6390/3")
        #expect(configuration.host == "10.0.0.5")
        #expect(configuration.port == 6390)
        #expect(configuration.user == "fog")
        #expect(configuration.password == "s3cret")
        #expect(configuration.database == 3)
    }

    @Test func defaultsToPort6379AndDatabase0() throws {
        let configuration = try RedisConfiguration(url: "redis://localhost")
        #expect(configuration.port == 6379)
        #expect(configuration.database == 0)
        #expect(configuration.user == nil)
    }

    @Test func passwordWithoutUserAuthenticatesTheDefaultUser() throws {
        let configuration = try RedisConfiguration(url: "redis://:only-pass@h")
        #expect(configuration.user == nil)
        #expect(configuration.password == "only-pass")
    }

    @Test(arguments: ["redis://h/notanumber", "rediss://h", "http://h", "redis://", "redis://h:0"])
    func refusesMalformedURLs(url: String) {
        #expect {
            try RedisConfiguration(url: url)
        } throws: { error in
            (error as? RedisError)?.code == .invalidURL && !"\(error)".contains("s3cret")
        }
    }
}
