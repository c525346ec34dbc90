import Foundation

/// A thread of its own that runs blocking jobs one after another, so that a blocking C call
/// (hiredis, libpq) never occupies a thread of Swift's cooperative pool.
///
/// A C connection handle that is not thread-safe belongs to exactly one worker for its life:
/// every job that touches it runs here, in submission order.
public final class BlockingWorker: @unchecked Sendable {
    /// Raised by `run` after `shutdown()`: the job was not started.
    public struct Stopped: Error, CustomStringConvertible {
        public let name: String
        public var description: String { "the worker thread '\(name)' has been shut down" }
    }

    public let name: String
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    private var thread: pthread_t?

    public init(name: String) {
        self.name = name
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the worker thread and returns its result to the awaiting task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let accepted = submit { continuation.resume(with: Result { try body() }) }
            if !accepted { continuation.resume(throwing: Stopped(name: name)) }
        }
    }

    /// Queues `job`; false when the worker is shutting down (the job will never run).
    @discardableResult
    public func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Lets the jobs already queued run, then ends the thread. New jobs are refused.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// True when called from this worker's own thread.
    public var isCurrentThread: Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let thread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    private func loop() {
        condition.lock()
        thread = pthread_self()
        condition.unlock()
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job() }
        }
    }
}
