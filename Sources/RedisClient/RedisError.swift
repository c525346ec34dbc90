/// Why a Redis call failed, in a form a person can act on. Never carries a password.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    /// An extensible set of failure kinds.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        /// The URL could not be parsed.
        public static let invalidURL = Code(name: "invalidURL")
        /// No TCP connection could be made (refused, unreachable, timed out).
        public static let connectionFailed = Code(name: "connectionFailed")
        /// The server refused the credentials (AUTH) or the database (SELECT).
        public static let authenticationFailed = Code(name: "authenticationFailed")
        /// The connection broke during a command; the command's effect is unknown.
        public static let connectionLost = Code(name: "connectionLost")
        /// The server answered with an error reply (WRONGTYPE, NOPERM, ...).
        public static let server = Code(name: "server")
        /// The reply did not have the shape the typed helper expected.
        public static let unexpectedReply = Code(name: "unexpectedReply")
    }

    public var code: Code
    public var message: String
    /// `host:port` of the server, when known.
    public var address: String?

    public init(_ code: Code, _ message: String, address: String? = nil) {
        self.code = code
        self.message = message
        self.address = address
    }

    public var description: String {
        if let address { return "Redis \(address): \(message) (\(code))" }
        return "Redis: \(message) (\(code))"
    }
}
