import Testing

@testable import ClientSupport

@Suite struct DoorbellTests {
    @Test func aRingBeforeTheWaitIsKept() async {
        let bell = Doorbell()
        bell.ring()
        bell.ring()  // rings that come together are one
        await bell.wait()  // returns at once
        let started = ContinuousClock.now
        await bell.wait(upTo: .milliseconds(100))
        // The second wait found no ring left and ran to its limit.
        #expect(ContinuousClock.now - started >= .milliseconds(100))
    }

    @Test(.timeLimit(.minutes(1))) func aRingWakesEveryWaiter() async {
        let bell = Doorbell()
        let started = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<3 { group.addTask { await bell.wait(upTo: .seconds(30)) } }
            // One ring for the three, once all three are parked: a ring before a wait is kept for
            // one waiter only, and on a busy machine the tasks may start late.
            while bell.waiting < 3 { await Task.yield() }
            bell.ring()
            await group.waitForAll()
        }
        // Woken by the ring, not by the 30 s limit.
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aTimeoutEndsTheWaitWithoutARing() async {
        let bell = Doorbell()
        let started = ContinuousClock.now
        await bell.wait(upTo: .milliseconds(30))
        #expect(ContinuousClock.now - started >= .milliseconds(30))
    }

    @Test(.timeLimit(.minutes(1))) func cancellingTheWaiterEndsItsWait() async {
        let bell = Doorbell()
        let waiter = Task { await bell.wait() }
        try? await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await waiter.value  // would hang forever if cancellation did not resume it
        bell.ring()
        await bell.wait()  // the ring after is kept for the next wait
    }
}
