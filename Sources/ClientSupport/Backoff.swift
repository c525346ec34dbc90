import Foundation

/// Exponential backoff with full jitter and a cap, as a value: the caller owns the clock.
///
/// `next(random:)` returns how long to wait before the next try; `reset()` after a success.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double
    public private(set) var attempts: Int = 0

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5), multiplier: Double = 2) {
        precondition(initial > .zero && maximum >= initial && multiplier >= 1, "invalid backoff bounds")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
    }

    /// The ceiling for the current attempt: initial · multiplier^attempts, capped at maximum.
    public var ceiling: Duration {
        let factor = pow(multiplier, Double(attempts))
        let scaled = initial.seconds * factor
        return scaled >= maximum.seconds ? maximum : .microseconds(Int64((scaled * 1e6).rounded()))
    }

    /// The delay before the next try: uniformly random in [ceiling/2, ceiling] ("equal jitter"),
    /// so retries of many clients spread out but never collapse to zero.
    public mutating func next(random: Double) -> Duration {
        let ceiling = self.ceiling.seconds
        attempts += 1
        let unit = min(max(random, 0), 1)
        return .microseconds(Int64(((ceiling / 2 + ceiling / 2 * unit) * 1e6).rounded()))
    }

    public mutating func next() -> Duration { next(random: Double.random(in: 0...1)) }

    public mutating func reset() { attempts = 0 }
}

extension Duration {
    /// The duration as floating-point seconds.
    public var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// The duration as a C `timeval`-ready pair, rounded down to microseconds.
    public var secondsAndMicroseconds: (seconds: Int, microseconds: Int) {
        let parts = components
        return (Int(parts.seconds), Int(parts.attoseconds / 1_000_000_000_000))
    }
}
