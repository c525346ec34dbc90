import Logging

/// A small pool of `PostgresConnection`s: at most `maximumConnections` sessions, lent to one
/// caller at a time, opened on demand and kept for reuse.
public actor PostgresPool {
    public let configuration: PostgresConfiguration
    public let maximumConnections: Int
    /// How long a caller waits for a free connection before `poolTimeout`.
    public let waitLimit: Duration
    private let logger: Logger
    private var idle: [PostgresConnection] = []
    private var lent = 0
    private var waiters: [(id: Int, continuation: CheckedContinuation<Void, Error>)] = []
    private var nextWaiter = 0
    private var closed = false

    public init(
        configuration: PostgresConfiguration, maximumConnections: Int = 4, waitLimit: Duration = .seconds(10),
        logger: Logger = Logger(label: "fog.postgres")
    ) {
        precondition(maximumConnections > 0, "a pool needs at least one connection")
        self.configuration = configuration
        self.maximumConnections = maximumConnections
        self.waitLimit = waitLimit
        self.logger = logger
    }

    /// Lends a connection to `body` and takes it back afterwards.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let value = try await body(connection)
            giveBack(connection)
            return value
        } catch {
            giveBack(connection)
            throw error
        }
    }

    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresResult {
        try await withConnection { try await $0.query(sql, parameters) }
    }

    public func withTransaction<T: Sendable>(_ body: (PostgresTransaction) async throws -> T) async throws -> T {
        try await withConnection { try await $0.withTransaction(body) }
    }

    /// Closes every idle connection; connections still lent close when given back.
    public func close() {
        closed = true
        for connection in idle { connection.close() }
        idle.removeAll()
        for waiter in waiters { waiter.continuation.resume(throwing: PostgresError(.connectionFailed, "the pool is closed")) }
        waiters.removeAll()
    }

    private func lease() async throws -> PostgresConnection {
        while true {
            guard !closed else { throw PostgresError(.connectionFailed, "the pool is closed") }
            if let connection = idle.popLast() {
                lent += 1
                return connection
            }
            if lent < maximumConnections {
                lent += 1
                return PostgresConnection(configuration: configuration, logger: logger)
            }
            try await waitForReturn()
        }
    }

    private func giveBack(_ connection: PostgresConnection) {
        lent -= 1
        if closed { connection.close() } else { idle.append(connection) }
        if !waiters.isEmpty { waiters.removeFirst().continuation.resume() }
    }

    private func waitForReturn() async throws {
        let id = nextWaiter
        nextWaiter += 1
        let limit = waitLimit
        let timer = Task { [weak self] in
            try await Task.sleep(for: limit)
            await self?.expire(id)
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { continuation in
            waiters.append((id, continuation))
        }
    }

    private func expire(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        let waiter = waiters.remove(at: index)
        waiter.continuation.resume(
            throwing: PostgresError(
                .poolTimeout, "no connection became free within \(waitLimit) (\(maximumConnections) in use)"))
    }
}
