import ArgumentParser
import Foundation
import ServiceCommand

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The scheduler's HTTP API as the CLI uses it: URL and token from flags or FOG_API_URL and
/// FOG_API_TOKEN; an error answer becomes a message and a non-zero exit.
struct APIOptions: ParsableArguments {
    @Option(help: "The API's base URL (FOG_API_URL, default http://127.0.0.1:8080).") var url: String?
    @Option(help: "A bearer token (FOG_API_TOKEN).") var token: String?
    @Flag(help: "Print the API's JSON instead of a table.") var json = false

    func request(_ method: String, _ path: String, body: Data? = nil) async throws -> Data {
        let environment = try ServiceSettings.environment()
        let base = url ?? environment["FOG_API_URL"] ?? "http://127.0.0.1:8080"
        guard let target = URL(string: base + path) else { throw ValidationError("invalid API URL \(base)") }
        var request = URLRequest(url: target)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let token = token ?? environment["FOG_API_TOKEN"] { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CLIError("cannot reach the scheduler at \(base): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            struct Failure: Decodable {
                struct Detail: Decodable {
                    let code: String
                    let message: String
                    let fields: [String: String]?
                }
                let error: Detail
            }
            if let failure = try? JSONDecoder().decode(Failure.self, from: data) {
                let fields = (failure.error.fields ?? [:]).sorted { $0.key < $1.key }.map { "\n  \($0.key): \($0.value)" }.joined()
                throw CLIError("\(status) \(failure.error.code): \(failure.error.message)\(fields)")
            }
            throw CLIError("HTTP \(status): \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        return data
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Prints rows as a table with aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    for row in [header] + rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}
