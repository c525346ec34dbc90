import Testing

@testable import FogNode

/// The heartbeat's fence deadline and re-registration, given the time: the timing cases that
/// need a Redis that stalls or a process that sleeps in the system tests, here without either.
@Suite struct HeartbeatTimerTests {
    typealias Timer = HeartbeatTimer<ContinuousClock.Instant>
    // TTL 6 s, interval 2 s: the node fences 4 s after the last renewal sent.
    static let margin = Duration.seconds(4)
    let start = ContinuousClock.now

    func at(_ seconds: Double) -> ContinuousClock.Instant { start.advanced(by: .milliseconds(Int(seconds * 1000))) }

    @Test func aNodeThatNeverRenewsIsFencedOneMarginAfterItsStart() {
        let timer = Timer(margin: Self.margin, startedAt: at(0))
        #expect(!timer.mustFence(at: at(3.999)))
        #expect(timer.mustFence(at: at(4)))
    }

    @Test func eachRenewalMovesTheDeadlineToOneMarginAfterItWasSent() {
        var timer = Timer(margin: Self.margin, startedAt: at(0))
        timer.renewed(sentAt: at(2))
        #expect(timer.fenceDeadline == at(6))
        #expect(!timer.mustFence(at: at(5.9)))
    }

    @Test func aRenewalStuckInItsCallPastTheTTLLeavesTheNodeFencedAtItsDeadline() {
        // Sent at 2 s, the call returns at 9 s (Redis stalled): the deadline at 6 s has passed
        // while the call was in flight, and the watch fences at 6 s without waiting for it.
        var timer = Timer(margin: Self.margin, startedAt: at(0))
        timer.renewed(sentAt: at(2))
        #expect(timer.mustFence(at: at(6)))
        // When it returns, it counts from when it was sent, not from when it returned: still
        // fenced at 9 s, as the key may have expired at 8 s.
        timer.renewed(sentAt: at(2))
        #expect(timer.mustFence(at: at(9)))
    }

    @Test func aRenewalThatReturnsAfterALaterOneNeverMovesTheDeadlineBack() {
        var timer = Timer(margin: Self.margin, startedAt: at(0))
        timer.renewed(sentAt: at(4))
        timer.renewed(sentAt: at(2))
        #expect(timer.fenceDeadline == at(8))
    }

    @Test func aProcessThatWakesUpLateFindsItselfFencedBeforeItRenews() {
        // Stopped (SIGSTOP, a frozen VM) from 3 s to 20 s: the first thing it asks is answered
        // with "fence", before a renewal could move the deadline on.
        var timer = Timer(margin: Self.margin, startedAt: at(0))
        timer.renewed(sentAt: at(2))
        #expect(timer.mustFence(at: at(20)))
    }

    @Test func theRegistrationIsWrittenFirstThenEveryThirtySecondsOrAfterALoss() {
        var timer = Timer(margin: Self.margin, registrationEvery: .seconds(30), startedAt: at(0))
        #expect(timer.needsRegistration(at: at(0)))
        timer.registered(at: at(0))
        #expect(!timer.needsRegistration(at: at(30)))
        #expect(timer.needsRegistration(at: at(30.001)))
        timer.registered(at: at(31))
        timer.registrationLost()  // a failed round, or a new life after a fence
        #expect(timer.needsRegistration(at: at(32)))
    }
}
