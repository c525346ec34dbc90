import Foundation

/// The parts of a service URL (`amqp://`, `redis://`, `postgres://`) that the clients need,
/// percent-decoded, with a parse error that names what is wrong and never echoes a password.
public struct ServiceURL: Sendable, Equatable {
    public var scheme: String
    public var host: String
    public var port: Int?
    public var user: String?
    public var password: String?
    /// The path without its leading slash, percent-decoded ("" when absent).
    public var path: String
    public var query: [String: String]

    /// Why a URL was refused. The URL itself is shown with its password masked.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let url: String
        public let reason: String

        public init(url: String, reason: String) {
            self.url = url
            self.reason = reason
        }

        public var description: String { "invalid URL '\(url)': \(reason)" }
    }

    public init(parsing text: String, schemes: Set<String>) throws {
        let masked = ServiceURL.mask(text)
        guard let components = URLComponents(string: text.trimmingCharacters(in: .whitespaces)) else {
            throw ParseError(url: masked, reason: "not a URL")
        }
        guard let scheme = components.scheme?.lowercased(), schemes.contains(scheme) else {
            let expected = schemes.sorted().map { "\($0)://" }.joined(separator: " or ")
            throw ParseError(url: masked, reason: "the scheme must be \(expected)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw ParseError(url: masked, reason: "no host")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw ParseError(url: masked, reason: "port \(port) is out of range")
        }
        self.scheme = scheme
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port
        self.user = components.user.flatMap { $0.isEmpty ? nil : $0 }
        self.password = components.password
        let path = components.path
        self.path = path.hasPrefix("/") ? String(path.dropFirst()) : path
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        self.query = query
    }

    /// The URL with any password replaced by `***`, for logs and error messages.
    public static func mask(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://"),
            let at = text[schemeEnd.upperBound...].lastIndex(of: "@")
        else { return text }
        let credentials = text[schemeEnd.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}
