/// A value in an AMQP field table (queue arguments, message headers).
public enum AMQPFieldValue: Sendable, Equatable, Hashable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case double(Double)
    case bytes([UInt8])
    case table(AMQPTable)
    case array([AMQPFieldValue])
    case void
    /// A timestamp, in seconds since the epoch.
    case timestamp(UInt64)

    public var string: String? {
        switch self {
        case .string(let text): text
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    public var int: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }
}

/// An AMQP field table, kept ordered so that what is sent is what was written.
public struct AMQPTable: Sendable, Equatable, Hashable, ExpressibleByDictionaryLiteral {
    public var entries: [(key: String, value: AMQPFieldValue)]

    public init(_ entries: [(key: String, value: AMQPFieldValue)] = []) { self.entries = entries }

    public init(dictionaryLiteral elements: (String, AMQPFieldValue)...) {
        entries = elements.map { (key: $0.0, value: $0.1) }
    }

    public subscript(key: String) -> AMQPFieldValue? {
        get { entries.last { $0.key == key }?.value }
        set {
            entries.removeAll { $0.key == key }
            if let newValue { entries.append((key, newValue)) }
        }
    }

    public var isEmpty: Bool { entries.isEmpty }

    public static func == (lhs: AMQPTable, rhs: AMQPTable) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.key)
            hasher.combine(entry.value)
        }
    }
}

extension AMQPTable {
    /// Arguments of a quorum queue, as RabbitMQ spells them.
    public static func quorumQueue(
        deliveryLimit: Int? = nil, deadLetterExchange: String? = nil, deadLetterRoutingKey: String? = nil,
        overflow: QueueOverflow? = nil, initialGroupSize: Int? = nil
    ) -> AMQPTable {
        var table: AMQPTable = ["x-queue-type": .string("quorum")]
        if let deliveryLimit { table["x-delivery-limit"] = .int(Int64(deliveryLimit)) }
        if let deadLetterExchange { table["x-dead-letter-exchange"] = .string(deadLetterExchange) }
        if let deadLetterRoutingKey { table["x-dead-letter-routing-key"] = .string(deadLetterRoutingKey) }
        if let overflow { table["x-overflow"] = .string(overflow.rawValue) }
        if let initialGroupSize { table["x-quorum-initial-group-size"] = .int(Int64(initialGroupSize)) }
        return table
    }
}

/// What a full queue does with a new message (`x-overflow`).
public enum QueueOverflow: String, Sendable {
    case dropHead = "drop-head"
    case rejectPublish = "reject-publish"
    case rejectPublishDLX = "reject-publish-dlx"
}
