import ClientSupport

/// Where and how to reach PostgreSQL: a `postgres://user:password@host:port/database` URL,
/// checked here so that a malformed one fails with a clear message before libpq sees it.
public struct PostgresConfiguration: Sendable {
    /// The URL as given (libpq parses it; its query parameters are passed through).
    public var url: String
    public var connectTimeout: Duration = .seconds(5)
    /// Name shown in `pg_stat_activity`.
    public var applicationName = "fogscheduler"
    /// How long a dead peer may go unnoticed on an idle or blocked socket (TCP user timeout).
    public var socketTimeout: Duration = .seconds(15)

    public init(url: String) throws {
        do {
            let parsed = try ServiceURL(parsing: url, schemes: ["postgres", "postgresql"])
            if parsed.path.isEmpty { throw ServiceURL.ParseError(url: ServiceURL.mask(url), reason: "no database name") }
        } catch let error as ServiceURL.ParseError {
            throw PostgresError(.invalidURL, error.description)
        }
        self.url = url
    }

    /// The address, without credentials, for messages.
    public var maskedURL: String { ServiceURL.mask(url) }

    /// The URL with the client settings libpq takes as parameters.
    var connectionString: String {
        let settings = [
            "connect_timeout=\(max(1, Int(connectTimeout.seconds.rounded(.up))))",
            "application_name=\(applicationName)",
            "keepalives=1", "keepalives_idle=5", "keepalives_interval=2", "keepalives_count=3",
            "tcp_user_timeout=\(Int(socketTimeout.seconds * 1000))",
        ].joined(separator: "&")
        return url + (url.contains("?") ? "&" : "?") + settings
    }
}
