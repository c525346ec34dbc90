import FogCore
import FogNode
import Testing

@testable import Scheduler

/// The placement settings, read and refused by name (no servers needed).
@Suite("Placement settings")
struct PlacementSettingsTests {
    static let services = [
        "FOG_BROKER_URL": "amqp://u:p@127.0.0.1:5672/fog", "FOG_REDIS_URL": "redis://u:p@127.0.0.1:6379/0",
        "FOG_DATABASE_URL": "postgres://u:p@127.0.0.1:5432/fog", "FOG_API_TOKENS": "0123456789abcdef0123",
    ]

    func scheduler(_ extra: [String: String]) throws -> SchedulerConfiguration {
        try SchedulerConfiguration(environment: Self.services.merging(extra) { $1 })
    }

    @Test("smart is the default; weights and affinity limits are read")
    func read() throws {
        let defaults = try scheduler([:])
        #expect(defaults.placementPolicy == "smart" && defaults.smartWeights == SmartWeights())
        #expect(defaults.affinityLimiter.maxActive == nil && defaults.affinityLimiter.perSecond == nil)
        let set = try scheduler([
            "FOG_SMART_WEIGHTS": "energy=0.5, fit=0", "FOG_AFFINITY_MAX_ACTIVE": "3",
            "FOG_AFFINITY_MAX_PER_SECOND": "2.5", "FOG_PLACEMENT_POLICY": "min-min",
        ])
        #expect(set.smartWeights.energy == 0.5 && set.smartWeights.fit == 0 && set.smartWeights.time == 1)
        #expect(set.affinityLimiter.maxActive == 3 && set.affinityLimiter.perSecond == 2.5)
        #expect(set.placementPolicy == "min-min")
    }

    @Test(
        "a wrong placement setting names its variable",
        arguments: [
            ("FOG_PLACEMENT_POLICY", "best"), ("FOG_SMART_WEIGHTS", "speed=1"), ("FOG_SMART_WEIGHTS", "time=fast"),
            ("FOG_SMART_WEIGHTS", "time=-1"), ("FOG_AFFINITY_MAX_ACTIVE", "-2"), ("FOG_AFFINITY_MAX_PER_SECOND", "lots"),
        ])
    func refused(name: String, value: String) {
        #expect { try scheduler([name: value]) } throws: { ($0 as? Settings.Invalid)?.name == name }
    }

    @Test("a fog node's speed must be a positive number", arguments: ["0", "-1", "fast", "5000"])
    func nodeSpeed(value: String) {
        let environment = [
            "FOG_BROKER_URL": Self.services["FOG_BROKER_URL"]!, "FOG_REDIS_URL": Self.services["FOG_REDIS_URL"]!,
            "FOG_NODE_ID": "n1", "FOG_NODE_SPEED": value,
        ]
        #expect { try FogNodeConfiguration(environment: environment) } throws: { ($0 as? Settings.Invalid)?.name == "FOG_NODE_SPEED" }
    }
}
