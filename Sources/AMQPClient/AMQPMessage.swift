/// The basic properties of a message (the AMQP content header) that this project uses.
public struct AMQPProperties: Sendable, Equatable {
    public var contentType: String?
    /// Persistent messages (the default) survive a broker restart in durable queues.
    public var persistent: Bool = true
    public var headers: AMQPTable = [:]
    public var messageID: String?
    public var correlationID: String?
    public var type: String?
    public var appID: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as text (AMQP's `expiration`).
    public var expiration: String?
    /// Seconds since the epoch.
    public var timestamp: UInt64?

    public init(contentType: String? = nil, persistent: Bool = true, headers: AMQPTable = [:], messageID: String? = nil) {
        self.contentType = contentType
        self.persistent = persistent
        self.headers = headers
        self.messageID = messageID
    }

    public static let json = AMQPProperties(contentType: "application/json")
}

/// A message to publish.
public struct OutgoingMessage: Sendable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var properties: AMQPProperties
    /// When set, a message no queue takes comes back as `.returned` instead of vanishing.
    public var mandatory: Bool

    public init(exchange: String, routingKey: String, body: [UInt8], properties: AMQPProperties = .json, mandatory: Bool = true) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
        self.mandatory = mandatory
    }
}

/// What the broker said about one published message.
public enum PublishOutcome: Sendable, Equatable {
    /// The broker took responsibility for it (for a quorum queue: a majority stored it).
    case ack
    /// The broker refused it (e.g. a full queue with `reject-publish`): publish again later.
    case nack
    /// No queue was bound for it (mandatory publish); the broker's reply code and text.
    case returned(replyCode: Int, replyText: String)

    public var isAck: Bool { self == .ack }
}

/// A message received by a consumer or by `get`. Acknowledge it through the connection that
/// delivered it; after a reconnect the broker delivers it again instead.
public struct AMQPDelivery: Sendable {
    public let body: [UInt8]
    public let properties: AMQPProperties
    public let exchange: String
    public let routingKey: String
    public let redelivered: Bool
    /// For quorum queues: how many times it was delivered before (`x-delivery-count`).
    public var deliveryCount: Int { Int(properties.headers["x-delivery-count"]?.int ?? 0) }

    let tag: UInt64
    let channel: UInt16
    let generation: Int
}

/// Counts reported by a (passive) queue declare.
public struct QueueInfo: Sendable, Equatable {
    public let name: String
    public let messageCount: Int
    public let consumerCount: Int
}

/// The kinds of exchange this project declares.
public enum ExchangeKind: String, Sendable {
    case direct, topic, fanout, headers
}
