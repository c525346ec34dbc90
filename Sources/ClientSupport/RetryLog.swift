import Logging

/// "Try again with a backoff, and say so once": what every loop that waits for a server does.
/// The first failure of an outage is logged (and a failure that reads differently from the
/// last one), the recovery once; `failed` also waits the backoff's next delay.
///
///     var retry = RetryLog("consuming \(queue)", logger: logger)
///     while !Task.isCancelled {
///         do { try await work(); retry.succeeded() } catch { await retry.failedAndWait(error) }
///     }
public struct RetryLog: Sendable {
    public let what: String
    public let logger: Logger
    public let level: Logger.Level
    public private(set) var backoff: Backoff
    /// The text of the failure logged last, nil when the last try succeeded.
    public private(set) var failing: String?

    public init(
        _ what: String, logger: Logger, level: Logger.Level = .warning,
        backoff: Backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
    ) {
        self.what = what
        self.logger = logger
        self.level = level
        self.backoff = backoff
    }

    /// A try failed: logs it unless it was said already (`hint` is appended to the line).
    public mutating func failed(_ error: any Error, hint: String = "") {
        let text = "\(error)"
        if failing != text { logger.log(level: level, "\(what): \(text)\(hint); trying again") }
        failing = text
    }

    /// A try failed: logs it once and waits the next backoff delay (or until cancelled).
    public mutating func failedAndWait(_ error: any Error, hint: String = "") async {
        failed(error, hint: hint)
        try? await Task.sleep(for: backoff.next())
    }

    /// A try succeeded: the recovery is logged once, the backoff starts again from its first delay.
    public mutating func succeeded() {
        if failing != nil { logger.info("\(what): working again") }
        failing = nil
        backoff.reset()
    }

    /// Runs `operation` until it returns, waiting a backoff between failures; nil when the task
    /// is cancelled first.
    public static func retrying<T: Sendable>(
        _ what: String, logger: Logger, level: Logger.Level = .warning,
        backoff: Backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5)),
        _ operation: () async throws -> T
    ) async -> T? {
        var retry = RetryLog(what, logger: logger, level: level, backoff: backoff)
        while !Task.isCancelled {
            do {
                let value = try await operation()
                retry.succeeded()
                return value
            } catch {
                if Task.isCancelled { return nil }
                await retry.failedAndWait(error)
            }
        }
        return nil
    }
}
