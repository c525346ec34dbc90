import Coordination
import FogCore
import Foundation
import Logging
import RedisClient
import Synchronization
import TestSupport
import Testing

/// The one election (the scheduler leader's, clusterctl's master) against the real Redis of the
/// test services, its turns taken by hand on a manual clock: the timing cases without a sleep.
@Suite(TestServices.required, .serialized)
struct LeaseElectionTests {
    let key = "test:lease:\(UUID().uuidString.prefix(8))"

    /// An election with a counter for its tokens and a record of what it reported.
    final class Contender: Sendable {
        let clock: ManualClock
        let lease: SharedLease<ManualClock>
        let redis: RedisConnection
        let tokens = Mutex(0)
        let changes = Mutex<[LeaseElection<ManualClock>.Change]>([])
        let mayClaim = Mutex(true)
        /// Run while the token is taken (a slow database).
        let whileTakingToken = Mutex<(@Sendable () -> Void)?>(nil)

        init(clock: ManualClock) async throws {
            self.clock = clock
            lease = SharedLease(ttl: .seconds(5), clock: clock)
            redis = try await RedisConnection.connect(RedisConfiguration(url: TestServices.redisURL))
        }

        func election(key: String, holder: String) -> LeaseElection<ManualClock> {
            LeaseElection(
                key: key, holder: holder, lease: lease, redis: redis, logger: Logger(label: "test"),
                mayClaim: { self.mayClaim.withLock { $0 } },
                newToken: { _ in
                    self.whileTakingToken.withLock { $0 }?()
                    return self.tokens.withLock {
                        $0 += 1
                        return $0
                    }
                },
                changed: { change in self.changes.withLock { $0.append(change) } })
        }
    }

    @Test func oneOfTwoWinsAndTheOtherFollowsUntilTheKeyIsFree() async throws {
        let clock = ManualClock()
        let a = try await Contender(clock: clock)
        let b = try await Contender(clock: clock)
        defer {
            a.redis.close()
            b.redis.close()
        }
        let (ea, eb) = (a.election(key: key, holder: "a"), b.election(key: key, holder: "b"))
        try await ea.turn()
        try await eb.turn()
        #expect(a.lease.token == 1 && b.lease.token == nil)
        #expect(a.changes.withLock { $0 } == [.gained(token: 1, adopted: false)])
        #expect(try await a.redis.get(key) == "a")
        // A third of the lease later a renews; b still follows.
        clock.advance(by: .seconds(2))
        try await ea.turn()
        try await eb.turn()
        #expect(a.lease.token == 1 && b.lease.token == nil)
        // a gives the key up (shutdown): b takes it at its next turn, with a token of its own.
        await ea.release()
        #expect(a.lease.token == nil && a.changes.withLock { $0.last } == .released)
        try await eb.turn()
        #expect(b.lease.token == 1 && b.changes.withLock { $0 } == [.gained(token: 1, adopted: false)])
        await eb.release()
    }

    /// The election loop is stuck (here: it takes no turn at all) while the clock passes the
    /// lease: the other loops read it as lapsed on time.
    @Test func aLeaseLapsesWhileItsHolderIsStuck() async throws {
        let clock = ManualClock()
        let a = try await Contender(clock: clock)
        defer { a.redis.close() }
        let election = a.election(key: key, holder: "a")
        try await election.turn()
        #expect(a.lease.token == 1)
        clock.advance(by: .milliseconds(4_999))
        #expect(a.lease.token == 1)
        clock.advance(by: .milliseconds(1))
        #expect(a.lease.token == nil, "no turn was taken, and yet the lease reads as lapsed")
        // The next turn steps down, then adopts the key that still names it in Redis (its
        // real TTL has not run out), with a new token.
        try await election.turn()
        #expect(a.changes.withLock { $0 } == [.gained(token: 1, adopted: false), .lapsed])
        try await election.turn()
        #expect(a.lease.token == 2 && a.changes.withLock { $0.last } == .gained(token: 2, adopted: true))
        await election.release()
        #expect(try await a.redis.get(key) == nil)
    }

    /// Winning the key and then taking longer than the lease to get the term's token (a
    /// database that hangs): the term never begins, and the key is given back.
    @Test func aTokenTakenPastTheLeaseGivesTheKeyBack() async throws {
        let clock = ManualClock()
        let a = try await Contender(clock: clock)
        defer { a.redis.close() }
        a.whileTakingToken.withLock { $0 = { clock.advance(by: .seconds(6)) } }
        let election = a.election(key: key, holder: "a")
        await #expect(throws: LeaseLapsed.self) { try await election.turn() }
        #expect(a.lease.token == nil && a.changes.withLock { $0 }.isEmpty)
        #expect(try await a.redis.get(key) == nil)
    }

    /// A resignation (the fence refused the token) ends the term at once, and the key is freed
    /// at the next turn, which may win it again with a new token. A stale token resigns nothing.
    @Test func aResignationEndsTheTermNow() async throws {
        let clock = ManualClock()
        let a = try await Contender(clock: clock)
        defer { a.redis.close() }
        let election = a.election(key: key, holder: "a")
        try await election.turn()
        #expect(!a.lease.resign(token: 7))
        #expect(a.lease.token == 1)
        #expect(a.lease.resign(token: 1))
        #expect(a.lease.token == nil)
        #expect(!a.lease.resign(token: 1))
        try await election.turn()
        #expect(a.changes.withLock { $0 } == [.gained(token: 1, adopted: false), .released, .gained(token: 2, adopted: false)])
        await election.release()
    }

    /// While `mayClaim` says no (clusterctl: a node that is not in the live members' cluster),
    /// a vacant key stays vacant.
    @Test func aContenderThatMayNotClaimLeavesTheKey() async throws {
        let clock = ManualClock()
        let a = try await Contender(clock: clock)
        defer { a.redis.close() }
        a.mayClaim.withLock { $0 = false }
        let election = a.election(key: key, holder: "a")
        try await election.turn()
        let vacant = try await a.redis.get(key)
        #expect(a.lease.token == nil && vacant == nil)
        a.mayClaim.withLock { $0 = true }
        try await election.turn()
        #expect(a.lease.token == 1)
        await election.release()
    }

    /// Someone else took the key (it expired in Redis while renewals failed, and another
    /// process won it): the renewal finds it and the holder follows.
    @Test func aHolderWhoseKeyWasTakenFollows() async throws {
        let clock = ManualClock()
        let a = try await Contender(clock: clock)
        defer { a.redis.close() }
        let election = a.election(key: key, holder: "a")
        try await election.turn()
        #expect(try await a.redis.set(key, to: "b"))
        clock.advance(by: .seconds(2))
        try await election.turn()
        #expect(a.lease.token == nil && a.changes.withLock { $0.last } == .taken)
        try await a.redis.delete(key)
    }
}
