import Foundation
import Hummingbird

/// The request context of the API: Hummingbird's core storage and the caller's scope.
public struct SchedulerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `BearerAuthentication` for `/v1` routes.
    public var scope: APITokens.Scope?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Every response body is JSON through this encoder (Hummingbird's `ResponseEncodable`):
    /// sorted keys, slashes as they are. A value that cannot be encoded throws, and the
    /// error mapping answers a logged 500, never an empty 200.
    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }

    /// Refuses a read-only caller.
    func requireWrite() throws {
        guard scope == .write else { throw APIError.forbidden }
    }
}

/// Checks `Authorization: Bearer <token>` against `FOG_API_TOKENS`: 401 without a valid
/// token, and the token's scope in the context for the handlers.
struct BearerAuthentication: RouterMiddleware {
    typealias Context = SchedulerRequestContext
    let tokens: APITokens

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            let scope = tokens.scope(of: String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
        else { throw APIError.unauthorized }
        var context = context
        context.scope = scope
        return try await next(request, context)
    }
}
