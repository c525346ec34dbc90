internal import CHiredis
import Foundation

/// Owns one hiredis `redisContext`: connects, authenticates, sends argv commands, frees the
/// context exactly once. Not thread-safe: only the owning `RedisConnection`'s worker touches it.
final class RedisContext {
    private var context: UnsafeMutablePointer<redisContext>?
    let address: String

    private init(context: UnsafeMutablePointer<redisContext>, address: String) {
        self.context = context
        self.address = address
    }

    deinit { close() }

    func close() {
        if let context { redisFree(context) }
        context = nil
    }

    var isOpen: Bool { context != nil }

    /// Connects, sets the command timeout, then AUTH and SELECT as configured.
    static func open(_ configuration: RedisConfiguration) throws -> RedisContext {
        let address = configuration.address
        let connect = configuration.connectTimeout.secondsAndMicroseconds
        guard
            let raw = redisConnectWithTimeout(
                configuration.host, Int32(configuration.port),
                timeval(tv_sec: connect.seconds, tv_usec: connect.microseconds))
        else { throw RedisError(.connectionFailed, "cannot allocate a connection", address: address) }
        if chiredis_err(raw) != 0 {
            let reason = String(cString: chiredis_errstr(raw))
            redisFree(raw)
            throw RedisError(.connectionFailed, "cannot connect: \(reason)", address: address)
        }
        // Never inherited by a program this process starts (a fog node's attempts).
        let descriptor = raw.pointee.fd
        if descriptor >= 0 { _ = fcntl(descriptor, F_SETFD, fcntl(descriptor, F_GETFD) | FD_CLOEXEC) }
        let handle = RedisContext(context: raw, address: address)
        let command = configuration.commandTimeout.secondsAndMicroseconds
        _ = redisSetTimeout(raw, timeval(tv_sec: command.seconds, tv_usec: command.microseconds))

        if let password = configuration.password {
            let auth = configuration.user.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            if case .error(let message) = try handle.execute([auth])[0] {
                handle.close()
                let who = configuration.user.map { "user '\($0)'" } ?? "the default user"
                throw RedisError(.authenticationFailed, "authentication as \(who) failed: \(message)", address: address)
            }
        }
        if configuration.database != 0,
            case .error(let message) = try handle.execute([["SELECT", String(configuration.database)]])[0]
        {
            handle.close()
            throw RedisError(.authenticationFailed, "cannot select database \(configuration.database): \(message)", address: address)
        }
        return handle
    }

    /// Sends every command, then reads every reply (one round trip for the lot). Error replies
    /// come back in place; a broken connection closes the context and throws `connectionLost`.
    func execute(_ commands: [[String]]) throws -> [RedisValue] {
        try execute(commands.map { $0.map { Array($0.utf8) } })
    }

    func execute(_ commands: [[[UInt8]]]) throws -> [RedisValue] {
        guard let context else { throw RedisError(.connectionLost, "the connection is closed", address: address) }
        for arguments in commands {
            let status = Self.withArgv(arguments) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            guard status == REDIS_OK else { throw lost() }
        }
        var replies: [RedisValue] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw lost() }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.value(of: reply))
            freeReplyObject(raw)
        }
        return replies
    }

    private func lost() -> RedisError {
        let reason = context.map { String(cString: chiredis_errstr($0)) } ?? "closed"
        close()
        return RedisError(.connectionLost, "connection lost: \(reason)", address: address)
    }

    /// Lends hiredis C views of binary-safe arguments, alive for the duration of `body`.
    private static func withArgv<R>(
        _ arguments: [[UInt8]],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        let total = arguments.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutablePointer<CChar>.allocate(capacity: max(total, 1))
        defer { storage.deallocate() }
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        var offset = 0
        for argument in arguments {
            argument.withUnsafeBufferPointer { bytes in
                if let base = bytes.baseAddress {
                    UnsafeMutableRawPointer(storage + offset).copyMemory(from: base, byteCount: bytes.count)
                }
            }
            pointers.append(UnsafePointer(storage + offset))
            lengths.append(argument.count)
            offset += argument.count
        }
        return pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeBufferPointer { body(Int32(arguments.count), argv.baseAddress!, $0.baseAddress!) }
        }
    }

    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        func bytes() -> [UInt8] {
            guard let str = r.str else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: r.len))
        }
        switch r.type {
        case REDIS_REPLY_STRING: return .bulk(bytes())
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int(r.integer))
        case REDIS_REPLY_ARRAY:
            var values: [RedisValue] = []
            values.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                if let element = r.element[index] { values.append(value(of: element)) } else { values.append(.null) }
            }
            return .array(values)
        default: return .null
        }
    }
}
