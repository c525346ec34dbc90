/// The master lease of one clusterctl, as a value: when to renew it, when it has lapsed.
/// Times are offsets on a monotonic clock that the caller reads (`now`), so tests need no sleep.
///
/// The lease itself lives in Redis (`SET NX PX`, renewed by compare-and-expire); this tracks
/// what the local process may believe about it. A master that cannot renew stops acting as
/// master when its lease would have expired, before any other node can take it over.
public struct MasterLease: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case follower
        case master(epoch: Int, expiresAt: Duration, renewAt: Duration)
    }

    public enum Action: Sendable, Equatable {
        /// Read the master key; claim it if empty and `mayClaim`.
        case observe
        /// Extend our lease (compare-and-expire).
        case renew
        /// Our lease lapsed without renewal: stop acting as master.
        case stepDown
    }

    public let ttl: Duration
    public private(set) var state: State = .follower

    public init(ttl: Duration) {
        precondition(ttl >= .seconds(1), "a master lease shorter than a second cannot be renewed in time")
        self.ttl = ttl
    }

    public var isMaster: Bool {
        if case .master = state { return true }
        return false
    }

    public var epoch: Int? {
        if case .master(let epoch, _, _) = state { return epoch }
        return nil
    }

    /// What to do at `now`.
    public mutating func tick(now: Duration) -> Action {
        switch state {
        case .follower:
            return .observe
        case .master(_, let expiresAt, let renewAt):
            if now >= expiresAt {
                state = .follower
                return .stepDown
            }
            return now >= renewAt ? .renew : .observe
        }
    }

    /// The claim (or a renewal) succeeded at `now`: the lease runs for `ttl` from then, and is
    /// renewed after a third of it, so that two renewals may fail before it lapses.
    public mutating func held(epoch: Int, at now: Duration) {
        state = .master(epoch: epoch, expiresAt: now + ttl, renewAt: now + ttl / 3)
    }

    public mutating func renewed(at now: Duration) {
        guard case .master(let epoch, _, _) = state else { return }
        held(epoch: epoch, at: now)
    }

    /// Someone else holds the key: we are not master (any more).
    public mutating func lost() { state = .follower }
}
