import ClientSupport
import ClusterCtl
import Foundation
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

    @Test func refusesAMembershipCheckMoreOftenThanTheHeartbeat() throws {
        var settings = try configuration()
        settings.membershipCheckInterval = .seconds(5)
        #expect(throws: ClusterCtlConfiguration.ValidationFailure.self) { try settings.validate() }
        settings.membershipCheckInterval = .seconds(10)
        try settings.validate()
    }

    @Test func theListenerProbeAcceptsAListeningPortAndNotAClosedOneNorAnUnknownHost() async throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && Glibc.listen(fd, 4) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        try #require(listening)
        let probe = ListenerProbe(host: "127.0.0.1", port: UInt16(bigEndian: address.sin_port), timeout: .seconds(2))
        let worker = BlockingWorker(name: "probe test")
        defer { worker.shutdown() }
        #expect(await probe.accepts(on: worker))
        close(fd)
        #expect(!(await probe.accepts(on: worker)), "nothing listens on \(probe) any more")
        #expect(!(await ListenerProbe(host: "no-such-host.invalid", port: 5672).accepts(on: worker)))
    }
}
