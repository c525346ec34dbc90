import ClientSupport
import Foundation

/// One broker address parsed from `amqp://user:password@host:port/vhost?heartbeat=30` or
/// `amqps://...?cacertfile=...&certfile=...&keyfile=...&verify=verify_peer`.
public struct AMQPEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var vhost: String
    public var user: String
    public var password: String
    public var tls: TLS?
    /// Heartbeat interval requested from the broker; zero turns heartbeats off.
    public var heartbeat: Duration
    public var connectTimeout: Duration

    /// TLS settings for `amqps://`. Without a CA file the system's default trust is used.
    public struct TLS: Sendable, Equatable {
        public var caCertificateFile: String?
        public var certificateFile: String?
        public var keyFile: String?
        public var verifyPeer = true

        public init(caCertificateFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verifyPeer: Bool = true) {
            self.caCertificateFile = caCertificateFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.verifyPeer = verifyPeer
        }
    }

    public init(url: String) throws {
        let parsed: ServiceURL
        do {
            parsed = try ServiceURL(parsing: url, schemes: ["amqp", "amqps"])
        } catch let error as ServiceURL.ParseError {
            throw AMQPError(.invalidURL, error.description)
        }
        func invalid(_ reason: String) -> AMQPError {
            AMQPError(.invalidURL, "invalid URL '\(ServiceURL.mask(url))': \(reason)")
        }
        let secure = parsed.scheme == "amqps"
        host = parsed.host
        port = parsed.port ?? (secure ? 5671 : 5672)
        // As in RabbitMQ's URI spec: no path means vhost "/", and "/%2F" spells "/" too.
        vhost = parsed.path.isEmpty ? "/" : parsed.path
        guard let user = parsed.user, let password = parsed.password else {
            throw invalid("user and password are required (no default credentials)")
        }
        self.user = user
        self.password = password
        let query = parsed.query
        heartbeat = .seconds(30)
        if let value = query["heartbeat"] {
            guard let seconds = Int(value), (0...3600).contains(seconds) else { throw invalid("heartbeat must be 0-3600 seconds") }
            heartbeat = .seconds(seconds)
        }
        connectTimeout = .seconds(5)
        if let value = query["connection_timeout"] {
            guard let milliseconds = Int(value), milliseconds > 0 else { throw invalid("connection_timeout must be milliseconds > 0") }
            connectTimeout = .milliseconds(milliseconds)
        }
        if secure {
            var tls = TLS(caCertificateFile: query["cacertfile"], certificateFile: query["certfile"], keyFile: query["keyfile"])
            switch query["verify"] {
            case nil, "verify_peer": tls.verifyPeer = true
            case "verify_none": tls.verifyPeer = false
            default: throw invalid("verify must be verify_peer or verify_none")
            }
            if (tls.certificateFile == nil) != (tls.keyFile == nil) { throw invalid("certfile and keyfile go together") }
            self.tls = tls
        } else if query["cacertfile"] != nil || query["certfile"] != nil {
            throw invalid("TLS options need an amqps:// URL")
        }
    }

    /// `host:port/vhost` without credentials, for logs.
    public var displayName: String { "\(tls == nil ? "amqp" : "amqps")://\(host):\(port)/\(vhost)" }
}

/// How an `AMQPConnection` reaches the broker: the URLs it tries in turn, and its timings.
public struct AMQPConfiguration: Sendable {
    public var endpoints: [AMQPEndpoint]
    /// The connection's name, shown in the broker's connection list.
    public var connectionName: String
    /// How long a synchronous broker call (declare, bind, consume) may take.
    public var rpcTimeout: Duration = .seconds(15)
    /// Backoff between whole rounds over the URL list.
    public var reconnectBackoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))

    public init(endpoints: [AMQPEndpoint], connectionName: String = "fogscheduler") {
        precondition(!endpoints.isEmpty, "an AMQP configuration needs at least one endpoint")
        self.endpoints = endpoints
        self.connectionName = connectionName
    }

    /// Parses a comma-separated list of URLs (`FOG_BROKER_URL`).
    public init(urls: String, connectionName: String = "fogscheduler") throws {
        let parts = urls.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw AMQPError(.invalidURL, "no broker URL given") }
        self.init(endpoints: try parts.map { try AMQPEndpoint(url: $0) }, connectionName: connectionName)
    }
}
