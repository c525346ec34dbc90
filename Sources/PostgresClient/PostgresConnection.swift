import ClientSupport
import Logging

/// One PostgreSQL session with a thread of its own: statements run there, one at a time, and
/// the calling task awaits them without blocking Swift's cooperative pool.
///
/// After a broken connection the failing call throws `connectionLost`, and the next call
/// connects again, except inside a transaction, which fails as a whole.
public final class PostgresConnection: Sendable {
    public let configuration: PostgresConfiguration
    private let worker: BlockingWorker
    private let state = State()
    private let logger: Logger

    /// Confined to the worker thread.
    private final class State: @unchecked Sendable {
        var handle: PostgresHandle?
        /// Bumped on every new session: a transaction refuses to continue on a later one.
        var generation = 0
    }

    public init(configuration: PostgresConfiguration, logger: Logger = Logger(label: "fog.postgres")) {
        self.configuration = configuration
        self.logger = logger
        self.worker = BlockingWorker(name: "postgres")
    }

    /// Connects now, so that a wrong password or an unreachable server shows at once.
    public static func connect(
        _ configuration: PostgresConfiguration, logger: Logger = Logger(label: "fog.postgres")
    ) async throws -> PostgresConnection {
        let connection = PostgresConnection(configuration: configuration, logger: logger)
        do {
            _ = try await connection.query("SELECT 1")
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// The C handle is freed on the worker thread too, never on the thread that drops the last reference.
    deinit { close() }

    public func close() {
        let state = self.state
        worker.submit {
            state.handle?.close()
            state.handle = nil
        }
        worker.shutdown()
    }

    /// Runs one statement; parameters are `$1`, `$2`, ... in order (nil is SQL NULL).
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresResult {
        let texts = parameters.map { $0?.postgresText }
        return try await withHandle(generation: nil) { try $0.execute(sql, texts) }
    }

    /// Runs a prepared statement, preparing it on this session first if needed.
    @discardableResult
    public func execute(_ statement: PreparedStatement, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresResult {
        let texts = parameters.map { $0?.postgresText }
        return try await withHandle(generation: nil) { try $0.execute(statement.sql, texts, prepared: statement.name) }
    }

    /// Copies rows into `table` in one `COPY ... FROM STDIN`; returns how many were copied.
    @discardableResult
    public func copy(into table: String, columns: [String], rows: [[(any PostgresEncodable)?]]) async throws -> Int {
        let texts = rows.map { $0.map { $0?.postgresText } }
        return try await withHandle(generation: nil) { try $0.copy(into: table, columns: columns, rows: texts) }
    }

    /// Runs `body` inside BEGIN ... COMMIT; any error rolls back and is rethrown. The body must
    /// use only the transaction it is given, and no other caller may use this connection
    /// meanwhile (a pool guarantees that).
    public func withTransaction<T: Sendable>(
        _ body: (PostgresTransaction) async throws -> T
    ) async throws -> T {
        let generation = try await withHandle(generation: nil) { [state] handle in
            _ = try handle.execute("BEGIN", [])
            return state.generation
        }
        let transaction = PostgresTransaction(connection: self, generation: generation)
        do {
            let value = try await body(transaction)
            try await transaction.run("COMMIT", [])
            return value
        } catch {
            _ = try? await transaction.run("ROLLBACK", [])
            throw error
        }
    }

    /// Runs `body` with an open session on the worker thread. With a generation, refuses to run
    /// on any session but that one (a transaction cannot survive a reconnect).
    func withHandle<T: Sendable>(generation: Int?, _ body: @escaping @Sendable (PostgresHandle) throws -> T) async throws -> T {
        let state = self.state
        let configuration = self.configuration
        let logger = self.logger
        return try await worker.run {
            if state.handle?.isOpen != true {
                state.handle?.close()
                state.handle = nil
                if generation != nil {
                    throw PostgresError(.connectionLost, "the connection was lost during the transaction")
                }
                state.handle = try PostgresHandle.open(configuration)
                if state.generation > 0 { logger.info("reconnected to PostgreSQL") }
                state.generation += 1
            } else if let generation, generation != state.generation {
                throw PostgresError(.connectionLost, "the connection was replaced during the transaction")
            }
            do {
                return try body(state.handle!)
            } catch let error as PostgresError where error.code == .connectionLost {
                logger.warning("PostgreSQL connection lost", metadata: ["error": "\(error.message)"])
                state.handle = nil
                throw error
            }
        }
    }
}

/// The statements of one open transaction; they fail rather than run on a new session.
public struct PostgresTransaction: Sendable {
    let connection: PostgresConnection
    let generation: Int

    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresResult {
        try await run(sql, parameters.map { $0?.postgresText })
    }

    @discardableResult
    public func execute(_ statement: PreparedStatement, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresResult {
        let texts = parameters.map { $0?.postgresText }
        return try await connection.withHandle(generation: generation) {
            try $0.execute(statement.sql, texts, prepared: statement.name)
        }
    }

    /// Runs several statements separated by `;`, without parameters (a migration, say).
    @discardableResult
    public func executeScript(_ sql: String) async throws -> PostgresResult {
        try await connection.withHandle(generation: generation) { try $0.executeScript(sql) }
    }

    @discardableResult
    public func copy(into table: String, columns: [String], rows: [[(any PostgresEncodable)?]]) async throws -> Int {
        let texts = rows.map { $0.map { $0?.postgresText } }
        return try await connection.withHandle(generation: generation) { try $0.copy(into: table, columns: columns, rows: texts) }
    }

    @discardableResult
    func run(_ sql: String, _ texts: [String?]) async throws -> PostgresResult {
        try await connection.withHandle(generation: generation) { try $0.execute(sql, texts) }
    }
}
