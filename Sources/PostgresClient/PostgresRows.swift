/// One row of a result, read by column name or position into typed Swift values.
public struct PostgresRow: Sendable {
    public let columns: PostgresColumns
    /// Each column's text, nil for SQL NULL.
    public let values: [String?]

    /// The column's value decoded as `T`; throws on a missing column, NULL or a bad value.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let value = try decodeIfPresent(column, as: type) else {
            throw PostgresError(.decoding, "column '\(column)' is NULL, expected \(T.self)")
        }
        return value
    }

    /// The column's value decoded as `T`, or nil for SQL NULL.
    public func decodeIfPresent<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T? {
        guard let index = columns.index(of: column) else {
            throw PostgresError(.decoding, "no column '\(column)' in the result (\(columns.names.joined(separator: ", ")))")
        }
        return try decodeIfPresent(at: index, as: type)
    }

    public func decode<T: PostgresDecodable>(at index: Int, as type: T.Type = T.self) throws -> T {
        guard let value = try decodeIfPresent(at: index, as: type) else {
            throw PostgresError(.decoding, "column \(index) is NULL, expected \(T.self)")
        }
        return value
    }

    public func decodeIfPresent<T: PostgresDecodable>(at index: Int, as type: T.Type = T.self) throws -> T? {
        guard values.indices.contains(index) else {
            throw PostgresError(.decoding, "no column \(index) in a result of \(values.count) columns")
        }
        guard let text = values[index] else { return nil }
        guard let value = T(postgresText: text) else {
            throw PostgresError(.decoding, "column '\(columns.names[index])' value '\(text.prefix(64))' is not a \(T.self)")
        }
        return value
    }
}

/// The column names of a result, shared by its rows.
public final class PostgresColumns: Sendable {
    public let names: [String]
    private let positions: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        for (index, name) in names.enumerated() where positions[name] == nil { positions[name] = index }
        self.positions = positions
    }

    func index(of name: String) -> Int? { positions[name] }
}

/// The outcome of one statement: its rows (if any) and the affected-row count.
public struct PostgresResult: Sendable {
    public let rows: [PostgresRow]
    /// Rows inserted, updated or deleted (or returned, for SELECT).
    public let affectedRows: Int

    /// The first row's first column decoded as `T`, for `SELECT count(*)` and the like.
    public func scalar<T: PostgresDecodable>(_ type: T.Type = T.self) throws -> T? {
        try rows.first?.decodeIfPresent(at: 0, as: type)
    }
}

/// A statement prepared once per connection (lazily, and again after a reconnect).
public struct PreparedStatement: Sendable, Hashable {
    public let name: String
    public let sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}
