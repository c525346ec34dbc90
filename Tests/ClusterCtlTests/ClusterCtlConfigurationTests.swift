import ClusterCtl
import RedisClient
import Testing

@Suite struct ClusterCtlConfigurationTests {
    func configuration(node: String = "rabbit@rabbitmq1") throws -> ClusterCtlConfiguration {
        ClusterCtlConfiguration(node: node, redis: try RedisConfiguration(url: "redis://fog:x@127.0.0.1:6379"))
    }

    @Test func theElectionTickFollowsTheLease() throws {
        var settings = try configuration()
        #expect(settings.tick == .seconds(1))
        settings.masterLease = .seconds(5)
        #expect(settings.tick == .milliseconds(500))
        settings.masterLease = .seconds(1)
        #expect(settings.tick == .milliseconds(200))
        settings.masterLease = .seconds(60)
        #expect(settings.tick == .seconds(1))
    }

    @Test(arguments: ["rabbitmq1", "@host", "name@"])
    func refusesNodeNamesWithoutAHost(node: String) throws {
        #expect(throws: ClusterCtlConfiguration.ValidationFailure.self) { try configuration(node: node).validate() }
    }

    @Test func refusesATTLNoLongerThanTheHeartbeatInterval() throws {
        var settings = try configuration()
        settings.heartbeatTTL = .seconds(5)
        #expect(throws: ClusterCtlConfiguration.ValidationFailure.self) { try settings.validate() }
        settings.heartbeatTTL = .seconds(30)
        try settings.validate()
    }
}
