/// Why an AMQP call failed, with the broker's reply code and text when it gave one.
public struct AMQPError: Error, CustomStringConvertible, Sendable {
    /// An extensible set of failure kinds.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public static let invalidURL = Code(name: "invalidURL")
        /// No broker URL could be reached (refused, unreachable, timed out, TLS failed).
        public static let connectionFailed = Code(name: "connectionFailed")
        /// The broker refused the user, password or vhost.
        public static let authenticationFailed = Code(name: "authenticationFailed")
        /// The connection broke while the call was in flight: its outcome is unknown, retry it.
        public static let connectionLost = Code(name: "connectionLost")
        /// The broker closed the channel (404 not found, 406 precondition failed, ...).
        public static let channelClosed = Code(name: "channelClosed")
        /// The broker cancelled a consumer (its queue was deleted, or its node left).
        public static let consumerCancelled = Code(name: "consumerCancelled")
        /// The broker did not answer in time.
        public static let timeout = Code(name: "timeout")
        /// `close()` was called.
        public static let closed = Code(name: "closed")
        /// The broker did not take a published message (nack, or returned unroutable).
        public static let publishRefused = Code(name: "publishRefused")
        /// rabbitmq-c reported an error that fits none of the above.
        public static let library = Code(name: "library")
    }

    public var code: Code
    public var message: String
    /// The AMQP reply code (404, 406, 403, 320, ...) when the broker sent one.
    public var replyCode: Int?

    public init(_ code: Code, _ message: String, replyCode: Int? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
    }

    public var description: String {
        if let replyCode { return "AMQP: \(message) (\(code), reply \(replyCode))" }
        return "AMQP: \(message) (\(code))"
    }
}
