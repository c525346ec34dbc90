/// One reply from Redis (RESP2), binary-safe.
public enum RedisValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case status(String)
    case integer(Int)
    case bulk([UInt8])
    case array([RedisValue])
    /// An error reply. Single commands throw it as `RedisError.server`; a pipeline returns it
    /// in place, so the other commands' replies are not lost.
    case error(String)

    /// The reply as text: bulk strings decoded as UTF-8, status lines, integers.
    public var string: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        case .integer(let value): String(value)
        default: nil
        }
    }

    public var integer: Int? {
        switch self {
        case .integer(let value): value
        case .bulk, .status: string.flatMap { Int($0) }
        default: nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var isNull: Bool { self == .null }

    public var description: String {
        switch self {
        case .null: "(nil)"
        case .status(let text): text
        case .integer(let value): "(integer) \(value)"
        case .bulk: "\"\(string ?? "")\""
        case .array(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .error(let message): "(error) \(message)"
        }
    }
}
