import Foundation

/// Every message body on the broker is versioned JSON (`"v": 1`, DESIGN.md §4). This reads
/// and writes them, and names what is wrong with a body that cannot be read.
public enum WireFormat {
    public static let version = 1

    /// Why a body could not be read; it goes into the dead-letter header.
    public struct Unreadable: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        /// The field at fault, when one is.
        public var field: String?
        public init(_ reason: String, field: String? = nil) {
            self.reason = reason
            self.field = field
        }
        public var description: String { reason }
    }

    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Our own message types always encode; a failure would be a programming error.
        return (try? Array(encoder.encode(value))) ?? []
    }

    public static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(Unreadable) -> T {
        let data = Data(body)
        guard let version = try? JSONDecoder().decode(Version.self, from: data) else {
            throw Unreadable("not a JSON object")
        }
        guard version.v == Self.version else {
            throw Unreadable(version.v.map { "unknown version \($0)" } ?? "no version field \"v\"")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw Unreadable(describe(error))
        } catch {
            throw Unreadable("\(error)")
        }
    }

    private struct Version: Decodable { let v: Int? }

    /// A decoding error as one line that names the field.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context)): expected \(typeName(type))"
        case .valueNotFound(let type, let context): return "\(path(context)): expected \(typeName(type)), found null"
        case .keyNotFound(let key, _): return "\(key.stringValue): missing"
        case .dataCorrupted(let context):
            let field = path(context)
            return field.isEmpty ? "not valid JSON" : "\(field): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// The dotted field a decoding error is about ("" for the whole body).
    public static func field(of error: DecodingError) -> String {
        let context: DecodingError.Context? =
            switch error {
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): c
            case .keyNotFound(let key, let c): DecodingError.Context(codingPath: c.codingPath + [key], debugDescription: "")
            @unknown default: nil
            }
        return context?.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[") ?? ""
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        case is [String].Type, is [Any].Type: "an array"
        default: "an object"
        }
    }
}
