import ClientSupport
import FogCore
import Logging
import RedisClient
import Synchronization

/// A lease as the loops of one process share it. The election writes it; the others ask
/// whether it is held *now*, on the lease's clock, so a holder whose election loop is stuck in
/// a call sees the lease lapse on time (`LeaseState.token(at:)`).
public final class SharedLease<C: Clock>: Sendable where C.Duration == Duration, C.Instant: Sendable {
    private struct State {
        var lease: LeaseState<C.Instant>
        /// A loop found the token stale: the election gives the key up at its next turn.
        var resigned = false
    }

    public let clock: C
    private let state: Mutex<State>

    public init(ttl: Duration, clock: C) {
        self.clock = clock
        self.state = Mutex(State(lease: LeaseState(ttl: ttl)))
    }

    public var ttl: Duration { state.withLock { $0.lease.ttl } }

    /// The token of the lease held now, nil when not held or lapsed.
    public var token: Int? {
        let now = clock.now
        return state.withLock { $0.lease.token(at: now) }
    }

    public var isHeld: Bool { token != nil }

    /// The current value, for tests and status.
    public var value: LeaseState<C.Instant> { state.withLock { $0.lease } }

    /// The store refused `token` (a newer holder exists, or this one's token is stale): stop
    /// acting on it now; the election frees the key at its next turn, so that a holder with a
    /// current token (perhaps this process again, with the next one) takes over within a tick.
    /// False when `token` is not the current term's (resigned already, or a later term).
    @discardableResult
    public func resign(token: Int) -> Bool {
        state.withLock { state in
            guard state.lease.phase.token == token else { return false }
            state.lease.lost()
            state.resigned = true
            return true
        }
    }

    func update<R>(_ body: (inout LeaseState<C.Instant>) -> R) -> R {
        state.withLock { body(&$0.lease) }
    }

    /// True once after `resign`.
    func takeResignation() -> Bool {
        state.withLock { state in
            defer { state.resigned = false }
            return state.resigned
        }
    }
}

extension LeaseState.Phase {
    var token: Int? {
        if case .holding(let token, _, _) = self { return token }
        return nil
    }
}

/// The one election on a Redis key: `SET key holder NX PX ttl` to claim it, compare-and-expire
/// to renew it, compare-and-delete to give it up. The scheduler replicas elect their leader with
/// it (`fog:scheduler:leader`), each clusterctl its master (`rabbitmq:cluster:master`); the rules
/// of timing are `LeaseState`'s. Redis errors are logged once per outage; nothing is decided
/// while Redis does not answer, and a held lease then lapses on time.
public struct LeaseElection<C: Clock>: Sendable where C.Duration == Duration, C.Instant: Sendable {
    /// What happened to the lease at a turn, for the caller's logs and follow-ups.
    public enum Change: Sendable, Equatable {
        /// A new term: won a vacant key, or adopted a key that named this holder already
        /// (a restarted process, or a lease that lapsed here but not in Redis).
        case gained(token: Int, adopted: Bool)
        /// The lease lapsed without a renewal.
        case lapsed
        /// The key names another holder (or none): someone else may hold it.
        case taken
        /// Given up after `SharedLease.resign` or `release()`.
        case released
    }

    public let key: String
    public let holder: String
    public let lease: SharedLease<C>
    let redis: RedisConnection
    let logger: Logger
    /// Whether this process may claim the vacant key now (clusterctl: `JoinPlanner.mayLead`).
    let mayClaim: @Sendable () async throws -> Bool
    /// The token of a new term, taken once the key is won (`adopted`: it named this holder
    /// already). A throw gives the key back.
    let newToken: @Sendable (_ adopted: Bool) async throws -> Int
    /// Told of every change, after the lease shows it.
    let changed: @Sendable (Change) async -> Void

    public init(
        key: String, holder: String, lease: SharedLease<C>, redis: RedisConnection, logger: Logger,
        mayClaim: @escaping @Sendable () async throws -> Bool = { true },
        newToken: @escaping @Sendable (_ adopted: Bool) async throws -> Int,
        changed: @escaping @Sendable (Change) async -> Void = { _ in }
    ) {
        self.key = key
        self.holder = holder
        self.lease = lease
        self.redis = redis
        self.logger = logger
        self.mayClaim = mayClaim
        self.newToken = newToken
        self.changed = changed
    }

    /// A turn every `tick` until the task is cancelled; then the key is given up if held.
    public func run(every tick: Duration) async {
        var outage = RetryLog("lease \(key)", logger: logger, level: .warning)
        while !Task.isCancelled {
            do {
                try await turn()
                outage.succeeded()
            } catch {
                outage.failed(error)
            }
            try? await lease.clock.sleep(for: tick)
        }
        await release()
    }

    /// One turn: claim, renew, step down or nothing, as `LeaseState` says.
    public func turn() async throws {
        if lease.takeResignation() {
            _ = try await redis.compareAndDelete(key, expected: holder)
            await changed(.released)
        }
        let sentAt = lease.clock.now
        switch lease.update({ $0.next(at: sentAt) }) {
        case .keep:
            return
        case .stepDown:
            await changed(.lapsed)
        case .renew:
            if try await redis.compareAndExpire(key, expected: holder, ttl: lease.ttl) {
                lease.update { $0.renewed(sentAt: sentAt) }
            } else if lease.update({ $0.lost() }) != nil {
                await changed(.taken)
            }
        case .claim:
            let current = try await redis.get(key)
            if current == holder {
                let sentAt = lease.clock.now
                guard try await redis.compareAndExpire(key, expected: holder, ttl: lease.ttl) else { return }
                try await begin(adopted: true, sentAt: sentAt)
            } else if current == nil, try await mayClaim() {
                let sentAt = lease.clock.now
                guard try await redis.set(key, to: holder, expiry: lease.ttl, onlyIfAbsent: true) else { return }
                try await begin(adopted: false, sentAt: sentAt)
            }
        }
    }

    private func begin(adopted: Bool, sentAt: C.Instant) async throws {
        let token: Int
        do {
            token = try await newToken(adopted)
        } catch {
            _ = try? await redis.compareAndDelete(key, expected: holder)
            throw error
        }
        lease.update { $0.claimed(token: token, sentAt: sentAt) }
        guard lease.isHeld else {
            // Taking the token took longer than the lease: the term never begins.
            lease.update { $0.lost() }
            _ = try? await redis.compareAndDelete(key, expected: holder)
            throw LeaseLapsed(key: key, token: token)
        }
        await changed(.gained(token: token, adopted: adopted))
    }

    /// Gives the key up now if this holder holds it (shutdown; a clusterctl whose node is down).
    public func release() async {
        guard lease.update({ $0.lost() }) != nil else { return }
        _ = try? await redis.compareAndDelete(key, expected: holder)
        await changed(.released)
    }
}

/// The key was won, but its lease lapsed before the new term's token was in hand.
public struct LeaseLapsed: Error, CustomStringConvertible {
    public let key: String
    public let token: Int
    public var description: String { "the lease of \(key) lapsed while token \(token) was being taken; the key is given back" }
}
