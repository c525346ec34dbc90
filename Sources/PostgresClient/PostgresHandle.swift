internal import CLibPQ
import Foundation

/// Owns one libpq `PGconn`: connects, runs statements, copies rows in, and frees the
/// connection exactly once. Not thread-safe: only its `PostgresConnection`'s worker uses it.
final class PostgresHandle {
    private var connection: OpaquePointer?
    private(set) var prepared: Set<String> = []
    /// Statements with parameters, prepared on their first run and kept by their text: the
    /// server then parses and plans each once per session instead of on every call (up to a
    /// third of a short statement's time). Dynamic texts beyond `maxCached` run unprepared.
    private var cached: [String: String] = [:]
    /// Never reused, even after a statement leaves the cache: a name stays bound to its text.
    private var nextCached = 0
    static let maxCached = 256

    private init(_ connection: OpaquePointer) { self.connection = connection }

    deinit { close() }

    func close() {
        if let connection { PQfinish(connection) }
        connection = nil
    }

    var isOpen: Bool { connection.map { PQstatus($0) == CONNECTION_OK } ?? false }

    static func open(_ configuration: PostgresConfiguration) throws -> PostgresHandle {
        guard let raw = PQconnectdb(configuration.connectionString) else {
            throw PostgresError(.connectionFailed, "cannot allocate a connection")
        }
        guard PQstatus(raw) == CONNECTION_OK else {
            let reason = String(cString: PQerrorMessage(raw)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(raw)
            throw PostgresError(.connectionFailed, "cannot connect to \(configuration.maskedURL): \(reason)")
        }
        return PostgresHandle(raw)
    }

    /// Runs one statement with text parameters (`$1`, `$2`, ...), or a prepared one by name.
    /// A statement with parameters and no name is prepared under a name of the cache's.
    func execute(_ sql: String, _ parameters: [String?], prepared explicitName: String? = nil) throws -> PostgresResult {
        var name = explicitName
        if name == nil, !parameters.isEmpty {
            if let known = cached[sql] {
                name = known
            } else if cached.count < Self.maxCached {
                name = "fog_cached_\(nextCached)"
                nextCached += 1
                cached[sql] = name
            }
        }
        do {
            return try run(sql, parameters, prepared: name)
        } catch let error as PostgresError where error.sqlState == "0A000" && name != nil && explicitName == nil {
            // "cached plan must not change result type": a table changed under the session
            // (a migration by a newer replica). Forget the statement and run it as text.
            if let name {
                _ = try? consume(PQexec(try requireOpen(), "DEALLOCATE \(name)"))
                prepared.remove(name)
            }
            cached[sql] = nil
            return try run(sql, parameters, prepared: nil)
        }
    }

    private func run(_ sql: String, _ parameters: [String?], prepared name: String?) throws -> PostgresResult {
        let connection = try requireOpen()
        if let name, !prepared.contains(name) {
            let result = PQprepare(connection, name, sql, 0, nil)
            _ = try consume(result)
            prepared.insert(name)
        }
        let cStrings = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { for string in cStrings { free(string) } }
        let result = cStrings.map { UnsafePointer($0) }.withUnsafeBufferPointer { values -> OpaquePointer? in
            if let name {
                return PQexecPrepared(connection, name, Int32(values.count), values.baseAddress, nil, nil, 0)
            }
            return PQexecParams(connection, sql, Int32(values.count), nil, values.baseAddress, nil, nil, 0)
        }
        return try consume(result)
    }

    /// Runs a script of several statements without parameters (simple query protocol);
    /// answers the last statement's result.
    func executeScript(_ sql: String) throws -> PostgresResult {
        let connection = try requireOpen()
        return try consume(PQexec(connection, sql))
    }

    /// `COPY table (columns) FROM STDIN` with rows in the text format: one round trip for many.
    func copy(into table: String, columns: [String], rows: [[String?]]) throws -> Int {
        let connection = try requireOpen()
        let columnList = columns.map(Self.quoteIdentifier).joined(separator: ", ")
        let start = PQexec(connection, "COPY \(Self.quoteIdentifier(table)) (\(columnList)) FROM STDIN")
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            _ = try consume(start)
            return 0
        }
        PQclear(start)
        var buffer = ""
        buffer.reserveCapacity(rows.count * 64)
        for row in rows {
            buffer += row.map { $0.map(Self.escapeCopyText) ?? "\\N" }.joined(separator: "\t")
            buffer += "\n"
        }
        let sent = buffer.utf8CString.withUnsafeBufferPointer { bytes in
            PQputCopyData(connection, bytes.baseAddress, Int32(bytes.count - 1))
        }
        guard sent == 1, PQputCopyEnd(connection, nil) == 1 else { throw lostOrFailed(nil) }
        var copied = 0
        while let result = PQgetResult(connection) { copied = max(copied, try consume(result).affectedRows) }
        return copied
    }

    private func requireOpen() throws -> OpaquePointer {
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            close()
            throw PostgresError(.connectionLost, "the connection is closed")
        }
        return connection
    }

    /// Turns a libpq result into rows or an error, and clears it.
    private func consume(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else { throw lostOrFailed(nil) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            let columnCount = Int(PQnfields(result))
            let columns = PostgresColumns((0..<columnCount).map { String(cString: PQfname(result, Int32($0))) })
            let rowCount = Int(PQntuples(result))
            var rows: [PostgresRow] = []
            rows.reserveCapacity(rowCount)
            for row in 0..<Int32(rowCount) {
                let values = (0..<Int32(columnCount)).map { column -> String? in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                }
                rows.append(PostgresRow(columns: columns, values: values))
            }
            let affected = Int(String(cString: PQcmdTuples(result))) ?? rowCount
            return PostgresResult(rows: rows, affectedRows: affected)
        default:
            throw lostOrFailed(result)
        }
    }

    private func lostOrFailed(_ result: OpaquePointer?) -> PostgresError {
        if let connection, PQstatus(connection) != CONNECTION_OK || result == nil {
            let reason = String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
            close()
            return PostgresError(.connectionLost, "connection lost: \(reason)")
        }
        func field(_ code: Character) -> String? {
            guard let result, let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let message = field("M") ?? result.map { String(cString: PQresultErrorMessage($0)) } ?? "unknown error"
        return PostgresError(.server, message, sqlState: field("C"), detail: field("D"))
    }

    static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private static func escapeCopyText(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\t": escaped += "\\t"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}
