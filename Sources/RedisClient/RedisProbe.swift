extension RedisConnection {
    /// Connects and PINGs, for a connectivity check; says where.
    public static func probe(url: String) async throws -> String {
        let connection = try await connect(try RedisConfiguration(url: url))
        defer { connection.close() }
        try await connection.ping()
        return "PING answered at \(connection.configuration.address)"
    }
}
