/// The fog node's side of its heartbeat, as a value given the time: when it must fence
/// itself, and when it must register again. No clock is read here, so that every timing case
/// (a renewal stuck in a call past the TTL, a renewal that returns late, a process that wakes
/// up after the deadline) is tested without Redis.
///
/// The fence deadline is TTL minus one interval after the last renewal *sent*: the key's TTL
/// runs from when Redis sets it, which is after that instant, so the deadline can only come
/// early, never late. The scheduler declares the node lost once the key has expired, one
/// interval after the deadline at the earliest.
struct HeartbeatTimer<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// TTL minus interval.
    let margin: Duration
    /// The registration (`fog:node:<id>`, and `fog:nodes`) is written again this often, in case
    /// someone deleted it.
    let registrationEvery: Duration
    /// When the last renewal that succeeded was sent (the start, before the first renewal).
    private(set) var lastRenewalSent: Instant
    private var lastRegistration: Instant?

    init(margin: Duration, registrationEvery: Duration = .seconds(30), startedAt: Instant) {
        self.margin = margin
        self.registrationEvery = registrationEvery
        self.lastRenewalSent = startedAt
    }

    /// From this instant on the node must be fenced, whatever the heartbeat loop is doing.
    var fenceDeadline: Instant { lastRenewalSent.advanced(by: margin) }

    func mustFence(at now: Instant) -> Bool { now >= fenceDeadline }

    /// A renewal sent at `instant` succeeded. One that returns after a later one (they never
    /// overlap today, but a slow reply must never move the deadline back) changes nothing.
    mutating func renewed(sentAt instant: Instant) {
        if instant > lastRenewalSent { lastRenewalSent = instant }
    }

    /// Whether the next round writes the registration: never written yet, written too long
    /// ago, or lost (a failed round, a new life).
    func needsRegistration(at now: Instant) -> Bool {
        guard let lastRegistration else { return true }
        return lastRegistration.duration(to: now) > registrationEvery
    }

    mutating func registered(at now: Instant) { lastRegistration = now }

    /// A round failed or the node's life changed: write the registration in the next round.
    mutating func registrationLost() { lastRegistration = nil }
}
