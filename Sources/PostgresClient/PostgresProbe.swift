extension PostgresConnection {
    /// Connects and asks the server's version, for a connectivity check.
    public static func probe(url: String) async throws -> String {
        let connection = try await connect(try PostgresConfiguration(url: url))
        defer { connection.close() }
        let version = try await connection.query("SHOW server_version").scalar(String.self) ?? "?"
        return "PostgreSQL \(version)"
    }
}
