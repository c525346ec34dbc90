import ClientSupport
import Logging

/// A Redis connection with a thread of its own. Every call is `async`; the blocking hiredis
/// calls run on the connection's worker thread, in order.
///
/// The connection reconnects by itself: after a failure the call that saw it throws
/// `connectionLost`, and the next call connects again. Callers own retry and backoff.
public final class RedisConnection: Sendable {
    public let configuration: RedisConfiguration
    private let worker: BlockingWorker
    private let state: State
    private let logger: Logger

    /// Mutable state confined to the worker thread.
    private final class State: @unchecked Sendable {
        var context: RedisContext?
        var scriptHashes: [String: String] = [:]
        var wasConnected = false
    }

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "fog.redis")) {
        self.configuration = configuration
        self.logger = logger
        self.worker = BlockingWorker(name: "redis \(configuration.address)")
        self.state = State()
    }

    /// Opens a connection now, so that a wrong password or an unreachable host shows at once.
    public static func connect(
        _ configuration: RedisConfiguration, logger: Logger = Logger(label: "fog.redis")
    ) async throws -> RedisConnection {
        let connection = RedisConnection(configuration: configuration, logger: logger)
        do {
            _ = try await connection.send("PING")
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// The C handle is freed on the worker thread too, never on the thread that drops the last reference.
    deinit { close() }

    /// Closes the socket and ends the worker thread. Calls made afterwards fail.
    public func close() {
        let state = self.state
        worker.submit {
            state.context?.close()
            state.context = nil
        }
        worker.shutdown()
    }

    /// Sends one command; an error reply throws `RedisError.server`.
    @discardableResult
    public func send(_ arguments: String...) async throws -> RedisValue {
        try await send(arguments)
    }

    @discardableResult
    public func send(_ arguments: [String]) async throws -> RedisValue {
        let reply = try await pipeline([arguments])[0]
        if case .error(let message) = reply {
            throw RedisError(.server, message, address: configuration.address)
        }
        return reply
    }

    /// Sends all commands in one round trip; each error reply stays in its place.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        return try await withContext { try $0.execute(commands) }
    }

    /// Binary-safe form of `pipeline` for values that are not text.
    public func pipeline(bytes commands: [[[UInt8]]]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        return try await withContext { try $0.execute(commands) }
    }

    /// Runs a Lua script by its SHA (EVALSHA), loading it once per connection and again after
    /// the server forgot it (NOSCRIPT, e.g. after a restart).
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisValue {
        let state = self.state
        let address = configuration.address
        let reply = try await withContext { context -> RedisValue in
            func load() throws -> String {
                let loaded = try context.execute([["SCRIPT", "LOAD", script.source]])[0]
                guard case .bulk = loaded, let sha = loaded.string else {
                    throw RedisError(.server, "SCRIPT LOAD failed: \(loaded)", address: address)
                }
                state.scriptHashes[script.source] = sha
                return sha
            }
            let sha = try state.scriptHashes[script.source] ?? load()
            let call = ["EVALSHA", sha, String(keys.count)] + keys + arguments
            let reply = try context.execute([call])[0]
            if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
                let call = ["EVALSHA", try load(), String(keys.count)] + keys + arguments
                return try context.execute([call])[0]
            }
            return reply
        }
        if case .error(let message) = reply { throw RedisError(.server, message, address: address) }
        return reply
    }

    /// Runs `body` with an open context on the worker thread, connecting first if needed.
    private func withContext<T: Sendable>(_ body: @escaping @Sendable (RedisContext) throws -> T) async throws -> T {
        let state = self.state
        let configuration = self.configuration
        let logger = self.logger
        return try await worker.run {
            if state.context?.isOpen != true {
                state.context = nil
                state.scriptHashes = [:]
                state.context = try RedisContext.open(configuration)
                if state.wasConnected { logger.info("reconnected to Redis", metadata: ["address": "\(configuration.address)"]) }
                state.wasConnected = true
            }
            do {
                return try body(state.context!)
            } catch let error as RedisError where error.code == .connectionLost {
                logger.warning("Redis connection lost", metadata: ["address": "\(configuration.address)", "error": "\(error.message)"])
                state.context = nil
                throw error
            }
        }
    }
}

/// A Lua script sent by EVALSHA. Declare every key the script touches in `keys`:
/// Redis ACLs check them.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public init(_ source: String) { self.source = source }
}
