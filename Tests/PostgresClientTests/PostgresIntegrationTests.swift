import Foundation
import PostgresClient
import TestSupport
import Testing

/// Against the real PostgreSQL of the test services.
@Suite(TestServices.required, .serialized)
struct PostgresIntegrationTests {
    let table = "test_\(UUID().uuidString.prefix(8).lowercased())"

    func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(PostgresConfiguration(url: TestServices.databaseURL))
    }

    func makeTable(_ db: PostgresConnection) async throws {
        try await db.query(
            "CREATE TABLE \(table) (id bigint PRIMARY KEY, name text, score double precision, ok boolean, at timestamptz, data bytea, ref uuid)"
        )
    }

    @Test func parametersAndTypedRowsRoundTrip() async throws {
        let db = try await connect()
        defer { db.close() }
        try await makeTable(db)
        let id = UUID()
        let at = Date(timeIntervalSince1970: 1_795_435_205.123456)
        let inserted = try await db.query(
            "INSERT INTO \(table) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [42, "tab\there \"quoted\" é", 0.5, true, at, [UInt8]([0, 255]), id])
        #expect(inserted.affectedRows == 1)
        try await db.query("INSERT INTO \(table) (id) VALUES ($1)", [43])

        let rows = try await db.query("SELECT * FROM \(table) ORDER BY id").rows
        #expect(rows.count == 2)
        #expect(try rows[0].decode("id", as: Int.self) == 42)
        #expect(try rows[0].decode("name", as: String.self) == "tab\there \"quoted\" é")
        #expect(try rows[0].decode("score", as: Double.self) == 0.5)
        #expect(try rows[0].decode("ok", as: Bool.self))
        #expect(abs(try rows[0].decode("at", as: Date.self).timeIntervalSince(at)) < 0.000_01)
        #expect(try rows[0].decode("data", as: [UInt8].self) == [0, 255])
        #expect(try rows[0].decode("ref", as: UUID.self) == id)
        #expect(try rows[1].decodeIfPresent("name", as: String.self) == nil)
        #expect(throws: PostgresError.self) { try rows[1].decode("name", as: String.self) }
        #expect(throws: PostgresError.self) { try rows[0].decode("missing", as: String.self) }
        #expect(throws: PostgresError.self) { try rows[0].decode("name", as: Int.self) }
        try await db.query("DROP TABLE \(table)")
    }

    @Test func aRolledBackTransactionLeavesNothing() async throws {
        let db = try await connect()
        defer { db.close() }
        try await makeTable(db)
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await db.withTransaction { tx in
                try await tx.query("INSERT INTO \(table) (id, name) VALUES (1, 'half')")
                try await tx.query("INSERT INTO \(table) (id, name) VALUES (2, 'written')")
                throw Abort()
            }
        }
        // A failing statement rolls back the statements before it as well.
        await #expect(throws: PostgresError.self) {
            try await db.withTransaction { tx in
                try await tx.query("INSERT INTO \(table) (id) VALUES (3)")
                try await tx.query("INSERT INTO \(table) (id) VALUES (3)")
            }
        }
        #expect(try await db.query("SELECT count(*) FROM \(table)").scalar(Int.self) == 0)
        let committed = try await db.withTransaction { tx in
            try await tx.query("INSERT INTO \(table) (id) VALUES (4)").affectedRows
        }
        #expect(committed == 1)
        #expect(try await db.query("SELECT count(*) FROM \(table)").scalar(Int.self) == 1)
        try await db.query("DROP TABLE \(table)")
    }

    @Test func serverErrorsCarryTheirSQLState() async throws {
        let db = try await connect()
        defer { db.close() }
        try await makeTable(db)
        try await db.query("INSERT INTO \(table) (id) VALUES (1)")
        await #expect {
            try await db.query("INSERT INTO \(table) (id) VALUES (1)")
        } throws: { error in
            (error as? PostgresError)?.sqlState == "23505"
        }
        await #expect {
            try await db.query("SELEC nonsense")
        } throws: { error in
            (error as? PostgresError)?.sqlState == "42601"
        }
        try await db.query("DROP TABLE \(table)")
    }

    @Test func preparedStatementsAndCopy() async throws {
        let db = try await connect()
        defer { db.close() }
        try await makeTable(db)
        let rows: [[(any PostgresEncodable)?]] = (0..<10_000).map { [$0, "name\t\($0)\n\\", Double($0) / 2, nil, nil, nil, nil] }
        let copied = try await db.copy(into: table, columns: ["id", "name", "score", "ok", "at", "data", "ref"], rows: rows)
        #expect(copied == 10_000)
        let byID = PreparedStatement(name: "test_by_id", sql: "SELECT name, score FROM \(table) WHERE id = $1")
        for id in [0, 1, 9_999] {
            let row = try #require(try await db.execute(byID, [id]).rows.first)
            #expect(try row.decode("name", as: String.self) == "name\t\(id)\n\\")
            #expect(try row.decode("score", as: Double.self) == Double(id) / 2)
        }
        try await db.query("DROP TABLE \(table)")
    }

    @Test func statementsWithParametersArePreparedOncePerSession() async throws {
        let db = try await connect()
        defer { db.close() }
        try await makeTable(db)
        for id in 0..<5 {
            try await db.query("INSERT INTO \(table) (id, name) VALUES ($1, $2)", [id, "n\(id)"])
        }
        let select = "SELECT \(table).* FROM \(table) WHERE id = $1"
        #expect(try await db.query(select, [3]).rows.first?.decode("name", as: String.self) == "n3")
        // Two statements with parameters, each prepared once (this query has none: not cached).
        let prepared = try await db.query("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'fog_cached_%'").scalar(Int.self)
        #expect(prepared == 2)
        // A table that changes under a cached statement ("cached plan must not change result
        // type") costs one unprepared run, not an error.
        try await db.query("ALTER TABLE \(table) ADD COLUMN extra integer")
        let row = try #require(try await db.query(select, [3]).rows.first)
        #expect(try row.decode("name", as: String.self) == "n3")
        #expect(row.columns.names.contains("extra"))
        #expect(try await db.query(select, [4]).rows.count == 1)
        try await db.query("DROP TABLE \(table)")
    }

    @Test func thePoolLendsAtMostItsSizeAtOnce() async throws {
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: TestServices.databaseURL), maximumConnections: 2)
        let backends = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    try await pool.query("SELECT pg_backend_pid() FROM pg_sleep(0.02)").scalar(Int.self) ?? -1
                }
            }
            return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
        }
        #expect(backends.count <= 2 && !backends.contains(-1))
        await pool.close()
    }

    @Test func aCallerWaitingLongerThanThePoolsLimitGetsPoolTimeout() async throws {
        let pool = PostgresPool(
            configuration: try PostgresConfiguration(url: TestServices.databaseURL),
            maximumConnections: 1, waitLimit: .milliseconds(200))
        async let holder: Void = pool.withConnection { connection in
            _ = try await connection.query("SELECT pg_sleep(1)")
        }
        try await Task.sleep(for: .milliseconds(100))
        await #expect {
            try await pool.query("SELECT 1")
        } throws: { error in
            (error as? PostgresError)?.code == .poolTimeout
        }
        try await holder
        // Once the connection is back, the pool lends it again.
        #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
        await pool.close()
    }

    @Test func aWrongPasswordIsAClearErrorNotACrash() async throws {
        var components = URLComponents(string: TestServices.databaseURL)!
        components.password = "definitely-wrong"
        await #expect {
            try await PostgresConnection.connect(try PostgresConfiguration(url: components.string!))
        } throws: { error in
            let error = error as? PostgresError
            return error?.code == .connectionFailed && error?.message.contains("password authentication failed") == true
                && error?.message.contains("definitely-wrong") == false
        }
    }

    @Test func anUnreachableServerIsAClearErrorNotACrash() async throws {
        var configuration = try PostgresConfiguration(url: "postgres://fog:x@127.0.0.1:1/fog")
        configuration.connectTimeout = .seconds(1)
        await #expect {
            try await PostgresConnection.connect(configuration)
        } throws: { error in
            (error as? PostgresError)?.code == .connectionFailed
        }
    }

    /// Kills the real server: runs last in this serialized suite, and restarts it.
    @Test func reconnectsAfterAServerRestart() async throws {
        let db = try await connect()
        defer { db.close() }
        let before = try await db.query("SELECT pg_backend_pid()").scalar(Int.self)
        try TestServices.kill("postgres")
        await #expect {
            try await db.query("SELECT 1")
        } throws: { error in
            (error as? PostgresError)?.isConnectionError == true
        }
        try TestServices.start("postgres")
        let after = try await db.query("SELECT pg_backend_pid()").scalar(Int.self)
        #expect(after != nil && after != before)
    }
}
