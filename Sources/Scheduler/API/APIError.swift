import FogCore
import Foundation
import Hummingbird
import PostgresClient

/// An API error as clients see it: a status and `{"error": {"code", "message", "fields"}}`.
/// The codes are listed in docs/API.md.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let fields: [String: String]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, fields: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    struct Body: Codable {
        struct Detail: Codable {
            let code: String
            let message: String
            let fields: [String: String]?
        }
        let error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"fogscheduler\"" }
        let body = Body(error: .init(code: code, message: message, fields: fields.isEmpty ? nil : fields))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: WireFormat.encode(body))))
    }

    static let unauthorized = APIError(.unauthorized, "unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)")
    static let forbidden = APIError(.forbidden, "forbidden", "this token may only read")

    /// What a failure from the store means for a client: the database being away is 503,
    /// never a 500 that suggests a bug.
    static func from(_ error: any Error) -> APIError {
        if let api = error as? APIError { return api }
        if let conflict = error as? IdempotencyConflict {
            return APIError(.conflict, "idempotency_conflict", conflict.description, fields: ["idempotency_key": "reused with a different body"])
        }
        if let postgres = error as? PostgresError {
            if postgres.isConnectionError || postgres.code == .poolTimeout || postgres.sqlState?.hasPrefix("08") == true
                || postgres.sqlState?.hasPrefix("57") == true
            {
                return APIError(.serviceUnavailable, "database_unavailable",
                                "the task database cannot be reached; try again (with the same idempotency_key, in case the database went away while it was storing this)")
            }
        }
        return APIError(.internalServerError, "internal", "an unexpected error occurred; it has been logged")
    }
}
