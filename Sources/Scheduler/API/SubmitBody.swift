import FogCore
import Foundation

/// The body of `POST /v1/tasks`: one task, or `{"tasks": [...]}`.
enum SubmitBody: Decodable {
    case one(TaskRequest)
    case batch([TaskRequest])

    private enum Keys: String, CodingKey { case tasks }

    init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: AnyCodingKey.self).allKeys.map(\.stringValue)
        if keys.contains("tasks") {
            guard keys.count == 1 else {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "a batch has only the field \"tasks\""))
            }
            self = .batch(try decoder.container(keyedBy: Keys.self).decode([TaskRequest].self, forKey: .tasks))
        } else {
            self = .one(try TaskRequest(from: decoder))
        }
    }

    /// Reads a body, naming the field of a type error (400) and every invalid field (422).
    static func specs(from body: [UInt8]) throws -> (specs: [TaskSpec], isBatch: Bool) {
        let parsed: SubmitBody
        do {
            parsed = try JSONDecoder().decode(SubmitBody.self, from: Data(body))
        } catch let error as DecodingError {
            let field = WireFormat.field(of: error)
            if case .dataCorrupted = error, field.isEmpty {
                let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
                throw APIError(.badRequest, .invalidJSON, "the body is not valid JSON (UTF-8)" + (detail.map { ": \($0)" } ?? ""))
            }
            throw APIError(
                .badRequest, .invalidFieldType, WireFormat.describe(error),
                fields: [field.isEmpty ? "body" : field: WireFormat.describe(error)])
        }
        switch parsed {
        case .one(let request):
            do { return ([try request.validated()], false) } catch {
                throw APIError(.unprocessableContent, .invalidTask, "the task is invalid: \(error)", fields: error.fields)
            }
        case .batch(let requests):
            guard !requests.isEmpty else {
                throw APIError(
                    .unprocessableContent, .invalidTask, "the batch is empty",
                    fields: ["tasks": "must hold 1 to \(TaskLimits.maxBatch) tasks"])
            }
            guard requests.count <= TaskLimits.maxBatch else {
                throw APIError(
                    .unprocessableContent, .batchTooLarge, "a batch holds at most \(TaskLimits.maxBatch) tasks",
                    fields: ["tasks": "must hold 1 to \(TaskLimits.maxBatch) tasks, not \(requests.count)"])
            }
            var specs: [TaskSpec] = []
            var fields: [String: String] = [:]
            for (index, request) in requests.enumerated() {
                do { specs.append(try request.validated()) } catch {
                    for (field, reason) in error.fields { fields["tasks[\(index)].\(field)"] = reason }
                }
            }
            guard fields.isEmpty else {
                throw APIError(
                    .unprocessableContent, .invalidTask,
                    "\(Set(fields.keys.map { $0.prefix { $0 != "." } }).count) tasks of the batch are invalid; none was stored",
                    fields: fields)
            }
            let keys = specs.compactMap(\.idempotencyKey)
            if Set(keys).count != keys.count {
                throw APIError(
                    .unprocessableContent, .invalidTask, "an idempotency key appears twice in the batch",
                    fields: ["tasks": "idempotency keys must be unique"])
            }
            return (specs, true)
        }
    }
}
