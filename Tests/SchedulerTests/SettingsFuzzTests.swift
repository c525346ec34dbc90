import FogCore
import FogNode
import Foundation
import Scheduler
import TestSupport
import Testing

/// The services' settings are outside input: a fuzz of every FOG_* variable the scheduler and
/// the fog node read. Each reading either succeeds within its limits or is refused by an error
/// that names a variable; a trap would end the test process.
@Suite("Fuzzing the FOG_* settings")
struct SettingsFuzzTests {
    static let base = [
        "FOG_BROKER_URL": "amqp://u:p@127.0.0.1:5672/fog", "FOG_REDIS_URL": "redis://u:p@127.0.0.1:6379/0",
        "FOG_DATABASE_URL": "postgres://u:p@127.0.0.1:5432/fog", "FOG_API_TOKENS": "0123456789abcdef0123",
    ]
    static let schedulerVariables = [
        "FOG_HTTP_PORT": "8080", "FOG_MAX_BODY_BYTES": "1048576", "FOG_LEADER_LEASE": "5s", "FOG_DISPATCH_INTERVAL": "250ms",
        "FOG_DISPATCH_BATCH": "500", "FOG_FAILURE_CHECK_INTERVAL": "500ms", "FOG_NODE_HEARTBEAT_TTL": "6s", "FOG_TIMEOUT_GRACE": "30s",
        "FOG_REPUBLISH_AFTER": "5s", "FOG_QUEUED_TIMEOUT": "60s", "FOG_RETRY_BASE": "1s", "FOG_RETRY_CAP": "60s",
        "FOG_PLACEMENT_POLICY": "smart", "FOG_SMART_WEIGHTS": "time=1,energy=0.4", "FOG_AFFINITY_MAX_ACTIVE": "2",
        "FOG_AFFINITY_MAX_PER_SECOND": "1.5", "FOG_DATABASE_POOL_SIZE": "8", "FOG_AUTO_MIGRATE": "true",
        "FOG_API_TOKENS": "0123456789abcdef0123:read",
    ]
    static let nodeVariables = [
        "FOG_NODE_ID": "n1", "FOG_NODE_ZONE": "zone-a", "FOG_NODE_CPU_MILLICORES": "2000", "FOG_NODE_MEMORY_MB": "1024",
        "FOG_NODE_STORAGE_MB": "10", "FOG_NODE_LABELS": "gpu=no,site=a", "FOG_NODE_LATENCIES": "zone-b=12.5", "FOG_NODE_POWER_IDLE_W": "5",
        "FOG_NODE_POWER_MAX_W": "20", "FOG_NODE_BATTERY_PCT": "80", "FOG_NODE_SPEED": "1.5", "FOG_HEARTBEAT_INTERVAL": "2s",
        "FOG_HEARTBEAT_TTL": "6s", "FOG_DRAIN_TIMEOUT": "30s", "FOG_TASK_MAX_PROCESSES": "256", "FOG_CGROUPS": "false",
        "FOG_ALLOWED_COMMANDS": "/bin/sh,/bin/echo",
    ]

    func expectNamed(_ error: any Error, _ environment: [String: String]) {
        if let invalid = error as? Settings.Invalid {
            #expect(invalid.name.hasPrefix("FOG_"), "\(invalid)")
        } else {
            #expect(!"\(error)".isEmpty)
        }
    }

    @Test("the scheduler's settings are read or refused by name")
    func scheduler() {
        var fuzzer = Fuzzer(seed: 11)
        for _ in 0..<3_000 {
            var environment = Self.base.merging(Self.schedulerVariables) { $1 }
            for _ in 0..<fuzzer.int(1...3) {
                let name = fuzzer.pick(Array(Self.schedulerVariables.keys))
                environment[name] = fuzzer.mutate(environment[name] ?? "1")
            }
            do {
                let configuration = try SchedulerConfiguration(environment: environment)
                #expect(configuration.leaderLease >= .seconds(1) && configuration.leaderLease <= Settings.maxDuration)
                #expect((1...65535).contains(configuration.httpPort))
            } catch {
                expectNamed(error, environment)
            }
        }
    }

    @Test("the fog node's settings are read or refused by name, and what it would register reads back")
    func fogNode() {
        var fuzzer = Fuzzer(seed: 12)
        for _ in 0..<3_000 {
            var environment = Self.base.merging(Self.nodeVariables) { $1 }
            environment["FOG_DATABASE_URL"] = nil
            for _ in 0..<fuzzer.int(1...3) {
                let name = fuzzer.pick(Array(Self.nodeVariables.keys))
                environment[name] = fuzzer.mutate(environment[name] ?? "1")
            }
            do {
                let configuration = try FogNodeConfiguration(environment: environment)
                let info = configuration.registration(startedAt: 1)
                #expect(throws: Never.self) { try FogNodeInfo(id: info.id, hashFields: info.hashFields) }
                #expect(configuration.heartbeatTTL <= Settings.maxDuration)
            } catch {
                expectNamed(error, environment)
            }
        }
    }
}
