import Foundation
import RedisClient
import TestSupport
import Testing

/// Against the real Redis of the test services (the scheduler's ACL user, limited to fog:* and test:*).
@Suite(TestServices.required, .serialized)
struct RedisIntegrationTests {
    let prefix = "test:\(UUID().uuidString.prefix(8)):"

    func connect() async throws -> RedisConnection {
        try await RedisConnection.connect(RedisConfiguration(url: TestServices.redisURL))
    }

    @Test func keysExpireAfterTheirTTL() async throws {
        let redis = try await connect()
        defer { redis.close() }
        let key = prefix + "ttl"
        #expect(try await redis.set(key, to: "alive", expiry: .milliseconds(300)))
        #expect(try await redis.get(key) == "alive")
        let ttl = try #require(try await redis.timeToLive(key))
        #expect(ttl > .zero && ttl <= .milliseconds(300))
        try await Task.sleep(for: .milliseconds(450))
        #expect(try await redis.get(key) == nil)
        #expect(try await redis.timeToLive(key) == nil)
    }

    @Test func anNXLockHasExactlyOneOwnerAmongContenders() async throws {
        let key = prefix + "lock"
        let first = try await connect()
        let second = try await connect()
        defer {
            first.close()
            second.close()
        }
        // 20 rounds of two clients racing for the same lock: exactly one wins each round.
        for round in 0..<20 {
            async let a = first.set(key, to: "A\(round)", expiry: .seconds(5), onlyIfAbsent: true)
            async let b = second.set(key, to: "B\(round)", expiry: .seconds(5), onlyIfAbsent: true)
            let (wonA, wonB) = try await (a, b)
            #expect(wonA != wonB, "round \(round): both or neither got the lock")
            let owner = try await first.get(key)
            #expect(owner == (wonA ? "A\(round)" : "B\(round)"))
            try await first.delete(key)
        }
    }

    @Test func compareAndDeleteReleasesOnlyTheOwnersLock() async throws {
        let redis = try await connect()
        defer { redis.close() }
        let key = prefix + "leader"
        try await redis.set(key, to: "instance-a", expiry: .seconds(5), onlyIfAbsent: true)
        #expect(try await redis.compareAndDelete(key, expected: "instance-b") == false)
        #expect(try await redis.get(key) == "instance-a")
        #expect(try await redis.compareAndDelete(key, expected: "instance-a") == true)
        #expect(try await redis.get(key) == nil)
    }

    @Test func compareAndExpireRenewsOnlyTheOwnersLease() async throws {
        let redis = try await connect()
        defer { redis.close() }
        let key = prefix + "lease"
        try await redis.set(key, to: "me", expiry: .milliseconds(500))
        #expect(try await redis.compareAndExpire(key, expected: "someone-else", ttl: .seconds(30)) == false)
        #expect(try await redis.timeToLive(key)! <= .milliseconds(500))
        #expect(try await redis.compareAndExpire(key, expected: "me", ttl: .seconds(30)) == true)
        #expect(try await redis.timeToLive(key)! > .seconds(25))
    }

    @Test func pipelinesKeepEachReplyInPlaceErrorsIncluded() async throws {
        let redis = try await connect()
        defer { redis.close() }
        let counter = prefix + "counter"
        let commands = Array(repeating: ["INCR", counter], count: 1_000) + [["HGET", counter, "x"], ["GET", counter]]
        let replies = try await redis.pipeline(commands)
        #expect(replies.count == 1_002)
        #expect(replies[999] == .integer(1_000))
        guard case .error(let message) = replies[1_000] else {
            Issue.record("expected WRONGTYPE in place, got \(replies[1_000])")
            return
        }
        #expect(message.hasPrefix("WRONGTYPE"))
        #expect(replies[1_001].string == "1000")
    }

    @Test func errorRepliesThrowWithTheServersMessage() async throws {
        let redis = try await connect()
        defer { redis.close() }
        await #expect {
            try await redis.send("SET", "outside-the-acl", "1")
        } throws: { error in
            let error = error as? RedisError
            return error?.code == .server && error?.message.contains("NOPERM") == true
        }
        // The connection is still usable afterwards.
        try await redis.ping()
    }

    @Test func setsHashesAndScan() async throws {
        let redis = try await connect()
        defer { redis.close() }
        let members = prefix + "members"
        let hash = prefix + "node"
        #expect(try await redis.setAdd(members, "rabbit@a", "rabbit@b", "rabbit@a") == 2)
        #expect(try await redis.setMembers(members) == ["rabbit@a", "rabbit@b"])
        #expect(try await redis.setContains(members, "rabbit@b"))
        #expect(try await redis.setRemove(members, "rabbit@b") == 1)
        try await redis.hashSet(hash, ["cpu_millicores": "2000", "zone": "zone-a"])
        #expect(try await redis.hashGetAll(hash) == ["cpu_millicores": "2000", "zone": "zone-a"])
        for index in 0..<120 { try await redis.set(prefix + "scan:\(index)", to: "v", expiry: .seconds(30)) }
        let found = try await redis.scan(matching: prefix + "scan:*", count: 25)
        #expect(Set(found).count == 120)
    }

    @Test func valuesAreBinarySafe() async throws {
        let redis = try await connect()
        defer { redis.close() }
        let key = Array((prefix + "binary").utf8)
        let value: [UInt8] = [0x66, 0x00, 0x6F, 0xFF, 0x00]
        _ = try await redis.pipeline(bytes: [[Array("SET".utf8), key, value]])
        let reply = try await redis.pipeline(bytes: [[Array("GET".utf8), key]])
        #expect(reply == [.bulk(value)])
    }

    @Test func aWrongPasswordIsAClearErrorNotACrash() async throws {
        var configuration = try RedisConfiguration(url: TestServices.redisURL)
        configuration.password = "definitely-wrong"
        await #expect {
            try await RedisConnection.connect(configuration)
        } throws: { error in
            let error = error as? RedisError
            return error?.code == .authenticationFailed && error?.message.contains("definitely-wrong") == false
        }
    }

    @Test func anUnreachableHostIsAClearErrorNotACrash() async throws {
        var configuration = try RedisConfiguration(url: "redis://fog:x@127.0.0.1:1")
        configuration.connectTimeout = .seconds(1)
        await #expect {
            try await RedisConnection.connect(configuration)
        } throws: { error in
            (error as? RedisError)?.code == .connectionFailed
        }
    }

    /// Kills the real Redis server: runs last in this serialized suite, and restarts it.
    @Test func reconnectsAfterARedisRestart() async throws {
        let redis = try await connect()
        defer { redis.close() }
        let key = prefix + "restart"
        // Load a script first, so that the restarted server's NOSCRIPT path is exercised too.
        try await redis.set(key, to: "before", expiry: .seconds(30))
        #expect(try await redis.compareAndExpire(key, expected: "before", ttl: .seconds(30)))

        try TestServices.kill("redis")
        await #expect(throws: RedisError.self) { try await redis.ping() }
        try TestServices.start("redis-empty")

        // The next call connects again; the data is gone (started without its append-only file).
        try await redis.ping()
        #expect(try await redis.get(key) == nil)
        try await redis.set(key, to: "after", expiry: .seconds(30))
        #expect(try await redis.compareAndExpire(key, expected: "after", ttl: .seconds(30)))
    }
}
