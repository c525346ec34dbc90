import ClientSupport

/// Where and how to reach Redis: parsed from `redis://[user:password@]host[:port][/db]`.
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int = 6379
    /// An ACL user; with a password and no user, AUTH uses the `default` user.
    public var user: String?
    public var password: String?
    public var database: Int = 0
    /// How long a TCP connect may take.
    public var connectTimeout: Duration = .seconds(3)
    /// How long one command may wait for its reply before the connection is dropped.
    public var commandTimeout: Duration = .seconds(5)

    public init(host: String, port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` URL. `rediss://` is refused: Debian's hiredis 0.14 has no TLS.
    public init(url: String) throws {
        let parsed: ServiceURL
        do {
            parsed = try ServiceURL(parsing: url, schemes: ["redis"])
        } catch let error as ServiceURL.ParseError {
            let hint = url.lowercased().hasPrefix("rediss://") ? " (TLS is not supported by this hiredis build)" : ""
            throw RedisError(.invalidURL, error.description + hint)
        }
        self.init(host: parsed.host, port: parsed.port ?? 6379, user: parsed.user, password: parsed.password)
        if !parsed.path.isEmpty {
            guard let database = Int(parsed.path), database >= 0 else {
                throw RedisError(.invalidURL, "invalid URL '\(ServiceURL.mask(url))': the path must be a database number")
            }
            self.database = database
        }
    }

    /// `host:port`, for messages.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
