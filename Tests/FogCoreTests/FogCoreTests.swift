import FogCore
import Testing

@Suite struct TopologyTests {
    @Test func nodeQueuesAndRoutingKeysFollowTheDesign() throws {
        let node = try #require(NodeID(rawValue: "edge-7"))
        #expect(Topology.nodeQueue(node, .critical) == "fog.node.edge-7.critical")
        #expect(Topology.nodeRoutingKey(node, .low) == "edge-7.low")
    }

    @Test(arguments: ["", "has space", "dot.ted", "slash/", "ünïcode", String(repeating: "a", count: 65), "star*"])
    func nodeIDsUnsafeInNamesAreRefused(candidate: String) {
        #expect(NodeID(rawValue: candidate) == nil)
    }

    @Test func classesAreConsumedHighestFirst() {
        #expect(PriorityClass.allCases.sorted() == [.critical, .high, .normal, .low])
        #expect(PriorityClass.critical < .low)
    }
}

@Suite struct ServiceEnvironmentTests {
    @Test func readsTheURLsItNeeds() throws {
        let environment = try ServiceEnvironment(
            environment: ["FOG_BROKER_URL": " amqp://a ", "FOG_REDIS_URL": "redis://r"], required: [.broker, .redis])
        #expect(environment.brokerURLs == "amqp://a")
        #expect(environment.redisURL == "redis://r")
        #expect(environment.databaseURL == nil)
    }

    @Test func namesEveryMissingVariableAtOnce() {
        #expect(throws: ServiceEnvironment.MissingVariables(names: ["FOG_BROKER_URL", "FOG_DATABASE_URL"])) {
            try ServiceEnvironment(environment: ["FOG_DATABASE_URL": "  "], required: [.broker, .database])
        }
    }
}
