extension AMQPConnection {
    /// Connects to the first broker of `urls` that answers, for a connectivity check; says which.
    public static func probe(urls: String) async throws -> String {
        let connection = try await connect(try AMQPConfiguration(urls: urls, connectionName: "check"))
        defer { connection.close() }
        return "connected to \(try await connection.currentBroker())"
    }
}
