import Foundation
import Testing

@testable import Scheduler

/// The error codes clients program against are the ones docs/API.md lists: a code added,
/// renamed or dropped in the code and not in the table (or the other way round) fails here.
@Suite struct APIErrorCodeTests {
    /// The code cell of each row of the errors table (`| 409 | `already_ended` | when |`).
    func documentedInAPIReference() throws -> Set<String> {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/API.md").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("| ") && $0.dropFirst(2).prefix(3).allSatisfy(\.isNumber) }
        return Set(
            rows.compactMap { row in
                let cells = row.split(separator: "|", omittingEmptySubsequences: false)
                guard cells.count > 2 else { return nil }
                return cells[2].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            })
    }

    @Test func everyCodeIsInTheAPIReferenceAndNoOther() throws {
        let documented = try documentedInAPIReference()
        #expect(documented.count >= 10, "the table in docs/API.md was not found")
        #expect(Set(APIError.Code.documented.map(\.rawValue)) == documented)
    }

    @Test func aStatusTheRouterAnswersGetsItsOwnCode() {
        #expect(APIError.Code.http(.notFound) == .notFound)
        #expect(APIError.Code.http(.methodNotAllowed).rawValue == "http_405")
    }

    @Test func theBodyCarriesTheCodeAsText() throws {
        let error = APIError(.conflict, .alreadyEnded, "the task has already ended as succeeded")
        #expect(error.description == "409 already_ended: the task has already ended as succeeded")
    }
}
