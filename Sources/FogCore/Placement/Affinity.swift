/// Rendezvous (highest random weight) hashing: every node gets a weight from hash(key, node),
/// and a key prefers the nodes in weight order. Losing a node moves only the keys that
/// preferred it; the others keep their node. The hash is FNV-1a with a SplitMix64 finaliser,
/// the same on every platform and every run (Swift's `Hasher` is seeded per process).
public enum Rendezvous {
    public static func weight(key: String, node: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01B3
        for byte in node.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }

    /// `nodes` in the order `key` prefers them.
    public static func ranked(_ nodes: [String], for key: String) -> [String] {
        nodes.map { (id: $0, weight: weight(key: key, node: $0)) }
            .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.id < $1.id }
            .map(\.id)
    }
}

/// The per-key limits applied at dispatch to tasks with an affinity key: at most `maxActive`
/// queued or running at once, and at most `perSecond` started per second (a token bucket
/// holding up to `burst`). Pure: the caller passes the time and the active counts.
public struct AffinityLimiter: Sendable, Equatable {
    public var maxActive: Int?
    public var perSecond: Double?
    public var burst: Double
    private var buckets: [String: (tokens: Double, at: Double)] = [:]

    public init(maxActive: Int? = nil, perSecond: Double? = nil, burst: Double? = nil) {
        self.maxActive = maxActive
        self.perSecond = perSecond
        self.burst = max(1, burst ?? perSecond ?? 1)
    }

    public static func == (a: AffinityLimiter, b: AffinityLimiter) -> Bool {
        a.maxActive == b.maxActive && a.perSecond == b.perSecond && a.burst == b.burst
    }

    /// Why a task with `key` must wait now, or nil when it may be placed.
    public func refusal(for key: String, active: Int, at now: Double) -> String? {
        if let maxActive, active >= maxActive { return "affinity key \(key) has \(active) active tasks (limit \(maxActive))" }
        if let perSecond, tokens(for: key, at: now) < 1 {
            return "affinity key \(key) is at its rate limit of \(perSecond) per second"
        }
        return nil
    }

    /// Records that a task with `key` was placed at `now`.
    public mutating func record(_ key: String, at now: Double) {
        guard perSecond != nil else { return }
        buckets[key] = (tokens(for: key, at: now) - 1, now)
        if buckets.count > 100_000 { forgetFull(at: now) }
    }

    private func tokens(for key: String, at now: Double) -> Double {
        guard let perSecond, let bucket = buckets[key] else { return burst }
        return min(burst, bucket.tokens + max(0, now - bucket.at) * perSecond)
    }

    /// Drops buckets that have refilled: they hold nothing a fresh bucket would not.
    private mutating func forgetFull(at now: Double) {
        buckets = buckets.filter { tokens(for: $0.key, at: now) < burst }
    }
}
