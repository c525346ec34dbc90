/// A lease on a shared key (the scheduler leader's, clusterctl's master), as the process that
/// competes for it may believe it: when to claim, to renew, to stop acting on it. A value with
/// one `mutating func` per event; every event carries the instant it happened at on the
/// holder's monotonic clock, so the rules are tested on a manual clock, without servers.
///
/// The key itself lives elsewhere (Redis: `SET NX PX`, renewed by compare-and-expire). A lease
/// the holder could not renew ends, here, when it would have expired there counted from when
/// the last successful request was *sent*: the store ran that request no earlier, so no other
/// process can take the key before then. A holder stuck in a call past that instant sees the
/// lease lapse (`token(at:)` is nil) without waiting for its answer.
public struct LeaseState<Instant: InstantProtocol>: Sendable, Equatable
where Instant.Duration == Duration, Instant: Sendable {
    public enum Phase: Sendable, Equatable {
        case following
        case holding(token: Int, expiresAt: Instant, renewAt: Instant)
    }

    /// What the holder does at its next turn.
    public enum Action: Sendable, Equatable {
        /// Not holding: look at the key and claim it if it is vacant (or adopt it if it is ours).
        case claim
        /// Holding, a third of the lease gone since the last renewal: extend it.
        case renew
        /// Holding, nothing due.
        case keep
        /// Holding, but the lease lapsed without a renewal: act on it no more.
        case stepDown
    }

    public let ttl: Duration
    public private(set) var phase: Phase = .following

    public init(ttl: Duration) {
        precondition(ttl >= .seconds(1), "a lease shorter than a second cannot be renewed in time")
        self.ttl = ttl
    }

    /// The token (fencing epoch) of the lease held at `now`, nil when not held or lapsed.
    public func token(at now: Instant) -> Int? {
        guard case .holding(let token, let expiresAt, _) = phase, now < expiresAt else { return nil }
        return token
    }

    /// True while in the holding phase, lapsed or not (the key may still name this holder).
    public var isHolding: Bool {
        if case .holding = phase { return true }
        return false
    }

    /// The turn at `now`: what to do.
    public mutating func next(at now: Instant) -> Action {
        guard case .holding(_, let expiresAt, let renewAt) = phase else { return .claim }
        if now >= expiresAt {
            phase = .following
            return .stepDown
        }
        return now >= renewAt ? .renew : .keep
    }

    /// A claim (or an adoption of a key that already named this holder) sent at `sentAt`
    /// succeeded, with `token` for the new term. The lease runs for `ttl` from `sentAt` and is
    /// renewed after a third of it, so that two renewals may fail before it lapses.
    public mutating func claimed(token: Int, sentAt: Instant) {
        phase = .holding(token: token, expiresAt: sentAt.advanced(by: ttl), renewAt: sentAt.advanced(by: ttl / 3))
    }

    /// A renewal sent at `sentAt` succeeded. Ignored when the holder stopped holding while it
    /// was on its way (it resigned, or stepped down): the key then lapses or is released.
    public mutating func renewed(sentAt: Instant) {
        guard case .holding(let token, let expiresAt, let renewAt) = phase else { return }
        // An answer that overtook a later one cannot shorten the lease.
        phase = .holding(
            token: token, expiresAt: max(expiresAt, sentAt.advanced(by: ttl)), renewAt: max(renewAt, sentAt.advanced(by: ttl / 3)))
    }

    /// The key names someone else, or this holder gives it up: following from now. Returns the
    /// token of the term that ended, if one was held.
    @discardableResult
    public mutating func lost() -> Int? {
        defer { phase = .following }
        if case .holding(let token, _, _) = phase { return token }
        return nil
    }
}
