/// The typed helpers the services need, over `send` and `evaluate`.
extension RedisConnection {
    /// Deletes `key` only while it still holds `value`: a lock or lease released by its owner.
    public static let compareAndDelete = RedisScript(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")

    /// Extends `key`'s expiry (ms) only while it still holds `value`: a lease renewed by its owner.
    public static let compareAndExpire = RedisScript(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end")

    public func ping() async throws {
        let reply = try await send("PING")
        guard reply == .status("PONG") else { throw unexpected("PING", reply) }
    }

    public func get(_ key: String) async throws -> String? {
        try await send("GET", key).string
    }

    /// SET with an optional expiry; with `onlyIfAbsent` (NX), false when the key existed.
    @discardableResult
    public func set(_ key: String, to value: String, expiry: Duration? = nil, onlyIfAbsent: Bool = false) async throws -> Bool {
        var arguments = ["SET", key, value]
        if let expiry { arguments += ["PX", String(Self.milliseconds(expiry))] }
        if onlyIfAbsent { arguments.append("NX") }
        let reply = try await send(arguments)
        switch reply {
        case .status("OK"): return true
        case .null: return false
        default: throw unexpected("SET", reply)
        }
    }

    /// Deletes the keys; returns how many existed.
    @discardableResult
    public func delete(_ keys: String...) async throws -> Int {
        try await integer(["DEL"] + keys)
    }

    /// The remaining time to live; nil when the key does not exist or has no expiry.
    public func timeToLive(_ key: String) async throws -> Duration? {
        let milliseconds = try await integer(["PTTL", key])
        return milliseconds >= 0 ? .milliseconds(milliseconds) : nil
    }

    @discardableResult
    public func expire(_ key: String, after ttl: Duration) async throws -> Bool {
        try await integer(["PEXPIRE", key, String(Self.milliseconds(ttl))]) == 1
    }

    public func increment(_ key: String) async throws -> Int {
        try await integer(["INCR", key])
    }

    /// Deletes `key` if it still holds `expected`; true when it did.
    public func compareAndDelete(_ key: String, expected: String) async throws -> Bool {
        try await evaluate(Self.compareAndDelete, keys: [key], arguments: [expected]).integer == 1
    }

    /// Sets `key`'s expiry to `ttl` if it still holds `expected`; true when it did.
    public func compareAndExpire(_ key: String, expected: String, ttl: Duration) async throws -> Bool {
        try await evaluate(Self.compareAndExpire, keys: [key], arguments: [expected, String(Self.milliseconds(ttl))]).integer == 1
    }

    // MARK: Sets

    @discardableResult
    public func setAdd(_ key: String, _ members: String...) async throws -> Int {
        try await integer(["SADD", key] + members)
    }

    @discardableResult
    public func setRemove(_ key: String, _ members: String...) async throws -> Int {
        try await integer(["SREM", key] + members)
    }

    public func setMembers(_ key: String) async throws -> Set<String> {
        let reply = try await send("SMEMBERS", key)
        guard let values = reply.array else { throw unexpected("SMEMBERS", reply) }
        return Set(values.compactMap(\.string))
    }

    public func setContains(_ key: String, _ member: String) async throws -> Bool {
        try await integer(["SISMEMBER", key, member]) == 1
    }

    // MARK: Hashes

    public func hashSet(_ key: String, _ fields: [String: String]) async throws {
        guard !fields.isEmpty else { return }
        let pairs = fields.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
        _ = try await integer(["HSET", key] + pairs)
    }

    public func hashGetAll(_ key: String) async throws -> [String: String] {
        let reply = try await send("HGETALL", key)
        guard let values = reply.array, values.count % 2 == 0 else { throw unexpected("HGETALL", reply) }
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: values.count, by: 2) {
            if let field = values[index].string, let value = values[index + 1].string { fields[field] = value }
        }
        return fields
    }

    // MARK: Keyspace

    /// Every key matching `pattern`, by SCAN (never KEYS, which blocks the server).
    public func scan(matching pattern: String, count: Int = 500) async throws -> [String] {
        var cursor = "0"
        var keys: [String] = []
        repeat {
            let reply = try await send("SCAN", cursor, "MATCH", pattern, "COUNT", String(count))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let batch = parts[1].array else {
                throw unexpected("SCAN", reply)
            }
            keys += batch.compactMap(\.string)
            cursor = next
        } while cursor != "0"
        return keys
    }

    // MARK: Helpers

    private func integer(_ arguments: [String]) async throws -> Int {
        let reply = try await send(arguments)
        guard case .integer(let value) = reply else { throw unexpected(arguments[0], reply) }
        return value
    }

    private func unexpected(_ command: String, _ reply: RedisValue) -> RedisError {
        RedisError(.unexpectedReply, "unexpected reply to \(command): \(reply)", address: configuration.address)
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        max(1, Int((duration.seconds * 1000).rounded(.up)))
    }
}
