/// Why a PostgreSQL call failed, with the server's SQLSTATE when there is one.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// An extensible set of failure kinds.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public static let invalidURL = Code(name: "invalidURL")
        /// The server could not be reached, or refused the login.
        public static let connectionFailed = Code(name: "connectionFailed")
        /// The connection broke during a statement; its effect is unknown.
        public static let connectionLost = Code(name: "connectionLost")
        /// The server rejected the statement (see `sqlState`).
        public static let server = Code(name: "server")
        /// A column was missing or did not decode to the asked type.
        public static let decoding = Code(name: "decoding")
        /// All pool connections stayed busy for longer than the pool's wait limit.
        public static let poolTimeout = Code(name: "poolTimeout")
    }

    public var code: Code
    public var message: String
    /// The five-character SQLSTATE, for server errors (`23505` unique violation, ...).
    public var sqlState: String?
    public var detail: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil, detail: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
    }

    /// True for errors after which the same statement may succeed on a new connection.
    public var isConnectionError: Bool { code == .connectionFailed || code == .connectionLost }

    public var description: String {
        var text = "PostgreSQL: \(message)"
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let detail { text += " (\(detail))" }
        return text
    }
}
