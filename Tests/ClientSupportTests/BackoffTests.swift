import ClientSupport
import Testing

@Suite struct BackoffTests {
    @Test func growsExponentiallyUpToTheCap() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1), multiplier: 2)
        // random 1 gives the ceiling itself: 100, 200, 400, 800, then capped at 1000 ms.
        let delays = (0..<6).map { _ in backoff.next(random: 1) }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
    }

    @Test func jitterStaysWithinHalfToFullCeiling() {
        var backoff = Backoff(initial: .milliseconds(400), maximum: .seconds(5))
        #expect(backoff.next(random: 0) == .milliseconds(200))
        backoff.reset()
        #expect(backoff.next(random: 0.5) == .milliseconds(300))
        #expect(backoff.attempts == 1)
    }

    @Test func resetStartsOver() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        _ = backoff.next(random: 1)
        _ = backoff.next(random: 1)
        backoff.reset()
        #expect(backoff.next(random: 1) == .milliseconds(100))
    }
}
