import FogCore
import Foundation
import Hummingbird
import PostgresClient

/// An API error as clients see it: a status and `{"error": {"code", "message", "fields"}}`.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    /// The machine-readable `error.code`: one of `documented` (the table in docs/API.md), or
    /// `http_<status>` for a status the router answers by itself (405 for a wrong method).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidJSON = Code("invalid_json")
        public static let invalidFieldType = Code("invalid_field_type")
        public static let invalidID = Code("invalid_id")
        public static let invalidQuery = Code("invalid_query")
        public static let unauthorized = Code("unauthorized")
        public static let forbidden = Code("forbidden")
        public static let notFound = Code("not_found")
        public static let idempotencyConflict = Code("idempotency_conflict")
        public static let alreadyEnded = Code("already_ended")
        public static let bodyTooLarge = Code("body_too_large")
        public static let unsupportedMediaType = Code("unsupported_media_type")
        public static let invalidTask = Code("invalid_task")
        public static let batchTooLarge = Code("batch_too_large")
        public static let cannotFit = Code("cannot_fit")
        public static let deadlineUnreachable = Code("deadline_unreachable")
        public static let internalError = Code("internal")
        public static let databaseUnavailable = Code("database_unavailable")
        public static let redisUnavailable = Code("redis_unavailable")
        /// A dependency of `/readyz` that did not answer in time (shown in its body, per check).
        public static let timeout = Code("timeout")

        /// Every code the API answers with, as docs/API.md lists them.
        public static let documented: [Code] = [
            .invalidJSON, .invalidFieldType, .invalidID, .invalidQuery, .unauthorized, .forbidden, .notFound,
            .idempotencyConflict, .alreadyEnded, .bodyTooLarge, .unsupportedMediaType, .invalidTask, .batchTooLarge,
            .cannotFit, .deadlineUnreachable, .internalError, .databaseUnavailable, .redisUnavailable,
        ]

        /// The code of a status that the router answers by itself (no route, a wrong method).
        static func http(_ status: HTTPResponse.Status) -> Code {
            status == .notFound ? .notFound : Code("http_\(status.code)")
        }
    }

    public let status: HTTPResponse.Status
    public let code: Code
    public let message: String
    public let fields: [String: String]

    public init(_ status: HTTPResponse.Status, _ code: Code, _ message: String, fields: [String: String] = [:]) {
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
        let body = Body(error: .init(code: code.rawValue, message: message, fields: fields.isEmpty ? nil : fields))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: WireFormat.encode(body))))
    }

    static let unauthorized = APIError(.unauthorized, .unauthorized, "a valid bearer token is required (Authorization: Bearer <token>)")
    static let forbidden = APIError(.forbidden, .forbidden, "this token may only read")

    /// What a failure from the store means for a client: the database being away is 503,
    /// never a 500 that suggests a bug.
    static func from(_ error: any Error) -> APIError {
        if let api = error as? APIError { return api }
        if let conflict = error as? IdempotencyConflict {
            return APIError(
                .conflict, .idempotencyConflict, conflict.description, fields: ["idempotency_key": "reused with a different body"])
        }
        if let postgres = error as? PostgresError {
            if postgres.isConnectionError || postgres.code == .poolTimeout || postgres.sqlState?.hasPrefix("08") == true
                || postgres.sqlState?.hasPrefix("57") == true
            {
                return APIError(
                    .serviceUnavailable, .databaseUnavailable,
                    "the task database cannot be reached; try again (with the same idempotency_key, in case the database went away while it was storing this)"
                )
            }
        }
        return APIError(.internalServerError, .internalError, "an unexpected error occurred; it has been logged")
    }
}
