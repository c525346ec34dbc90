/// The service URLs a process needs, read from `FOG_*` variables in one place.
///
/// Pure: it is given the environment as a dictionary and reports every problem at once.
public struct ServiceEnvironment: Sendable, Equatable {
    /// `FOG_BROKER_URL`: one or more comma-separated `amqp://` / `amqps://` URLs.
    public var brokerURLs: String?
    /// `FOG_REDIS_URL`: a `redis://` URL.
    public var redisURL: String?
    /// `FOG_DATABASE_URL`: a `postgres://` URL (the scheduler only; fog nodes never hold it).
    public var databaseURL: String?

    public enum Service: String, Sendable, CaseIterable {
        case broker = "FOG_BROKER_URL"
        case redis = "FOG_REDIS_URL"
        case database = "FOG_DATABASE_URL"
    }

    /// Why the environment is not enough, naming every missing variable.
    public struct MissingVariables: Error, CustomStringConvertible, Equatable {
        public let names: [String]

        public init(names: [String]) { self.names = names }

        public var description: String {
            "missing environment variable\(names.count == 1 ? "" : "s"): \(names.joined(separator: ", ")) (see .env.example)"
        }
    }

    public init(brokerURLs: String? = nil, redisURL: String? = nil, databaseURL: String? = nil) {
        self.brokerURLs = brokerURLs
        self.redisURL = redisURL
        self.databaseURL = databaseURL
    }

    /// Reads the variables for `required` services; blank values count as missing.
    public init(environment: [String: String], required: Set<Service>) throws {
        func value(_ service: Service) -> String? {
            guard let text = environment[service.rawValue]?.trimmingSpaces, !text.isEmpty else { return nil }
            return text
        }
        self.init(brokerURLs: value(.broker), redisURL: value(.redis), databaseURL: value(.database))
        let missing = Service.allCases.filter { required.contains($0) && value($0) == nil }.map(\.rawValue)
        if !missing.isEmpty { throw MissingVariables(names: missing) }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
}
