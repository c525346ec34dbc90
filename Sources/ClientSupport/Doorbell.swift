import Synchronization

/// A wake-up between tasks: `ring()` ends every `wait()` in progress, or else the next one,
/// which then returns at once. A ring says "look again", never what changed: the waiter checks
/// its own state after every wake, so rings that come together are one, and a ring lost to a
/// timeout costs nothing. It replaces polling on a short timer, which costs half the period in
/// latency on average and a wake-up every period while idle.
public final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// How many waits are parked on the bell now (for tests, which must ring only once every
    /// waiter they start is parked).
    var waiting: Int { state.withLock { $0.waiters.count } }

    public func ring() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.waiters.isEmpty {
                state.rung = true
                return []
            }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when the bell rings, at once if it rang since the last wait, or when the task
    /// is cancelled.
    public func wait() async {
        let id = state.withLock { state in
            state.nextID &+= 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Returns when the bell rings or after `limit`, whichever comes first.
    public func wait(upTo limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }
}
