import AMQPClient
import FogCore
import Foundation
import Hummingbird
import Logging
import RedisClient

/// The HTTP API v1 (DESIGN.md §9, docs/API.md): its routes and handlers. Every replica
/// serves it; only the leader dispatches what it accepts.
public struct SchedulerAPI: Sendable {
    let context: SchedulerContext
    var store: TaskStore { context.store }
    var directory: NodeDirectory { context.directory }
    var publisher: TaskPublisher { context.publisher }
    var redis: RedisConnection { context.redis }
    var metrics: SchedulerMetrics { context.metrics }
    var configuration: SchedulerConfiguration { context.configuration }
    var logger: Logger { context.logger }

    public init(context: SchedulerContext) { self.context = context }

    /// Every route, as `/openapi.json` documents them.
    public func router() -> Router<SchedulerRequestContext> {
        let router = Router(context: SchedulerRequestContext.self)
        router.add(middleware: ErrorMapping(logger: logger))
        router.get("/healthz") { _, _ in Health(status: "ok") }
        router.get("/readyz") { _, _ in try await readiness() }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        let v1 = router.group("v1").add(middleware: BearerAuthentication(tokens: configuration.tokens))
        v1.post("tasks") { request, context in try await submit(request, context) }
        v1.get("tasks") { request, context in try await list(request, context) }
        v1.get("tasks/:id") { _, context in
            guard let task = try await store.task(try taskID(context)) else { throw APIError(.notFound, .notFound, "no such task") }
            return context.scope == .write ? task : task.redacted
        }
        v1.post("tasks/:id/cancel") { _, context in try await cancel(try taskID(context), context) }
        v1.get("nodes") { _, _ in try await nodes() }
        v1.get("stats") { _, _ in try await stats() }
        return router
    }

    func submit(_ request: Request, _ context: SchedulerRequestContext) async throws -> Response {
        try context.requireWrite()
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw APIError(.unsupportedMediaType, .unsupportedMediaType, "send the task as application/json")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, .bodyTooLarge, "the body is larger than \(configuration.maxBodyBytes) bytes")
        }
        let (specs, isBatch) = try SubmitBody.specs(from: Array(buffer: body))
        // A task that no registered node could hold even when empty is refused now rather than
        // waiting forever. With Redis away the check is skipped: the task waits, as designed.
        // A deadline that no live node can meet is recorded on the task, or refused when the
        // task asks for that (`deadline_policy: refuse`). The nodes are read at most every
        // 250 ms for all submits together; a refusal is only given on a fresh read.
        var risks: [String?] = []
        if let recent = try? await directory.recentEntries(within: .milliseconds(250)) {
            do {
                risks = try Self.admit(specs, isBatch: isBatch, nodes: recent)
            } catch let refusal as APIError {
                guard let fresh = try? await directory.entries() else { throw refusal }
                risks = try Self.admit(specs, isBatch: isBatch, nodes: fresh)
            }
        }
        let stored = try await store.submit(specs, deadlineRisks: risks)
        let created = stored.filter(\.created).count
        metrics.submitted.increment(by: Int64(created))
        if created > 0 { self.context.nudge.signal() }
        if isBatch {
            struct Batch: ResponseEncodable {
                let tasks: [TaskRecord]
                let created: Int
            }
            return try EditedResponse(status: created > 0 ? .created : .ok, response: Batch(tasks: stored.map(\.task), created: created))
                .response(from: request, context: context)
        }
        return try EditedResponse(status: stored[0].created ? .created : .ok, response: stored[0].task).response(
            from: request, context: context)
    }

    /// Refuses what no registered node could ever hold, and what no live node can finish by its
    /// deadline when the task asks for that; returns each task's deadline risk.
    static func admit(_ specs: [TaskSpec], isBatch: Bool, nodes entries: [NodeDirectory.Entry]) throws -> [String?] {
        let registered = entries.compactMap(\.info)
        var fields: [String: String] = [:]
        for (index, spec) in specs.enumerated() {
            for (field, reason) in PlacementConstraints.neverFits(spec.resources, nodes: registered) {
                fields[isBatch ? "tasks[\(index)].\(field)" : field] = reason
            }
        }
        if !fields.isEmpty {
            throw APIError(
                .unprocessableContent, .cannotFit, "no registered fog node could ever run this; nothing was stored", fields: fields)
        }
        let live = entries.compactMap { $0.alive ? $0.info : nil }
        let now = Date().timeIntervalSince1970
        let risks = specs.map { PlacementConstraints.deadlineRisk(for: $0, nodes: live, at: now) }
        for (index, spec) in specs.enumerated() where spec.deadlinePolicy == .refuse {
            if let risk = risks[index] { fields[isBatch ? "tasks[\(index)].deadline" : "deadline"] = risk }
        }
        if !fields.isEmpty {
            throw APIError(
                .unprocessableContent, .deadlineUnreachable, "no live fog node can meet the deadline; nothing was stored", fields: fields)
        }
        return risks
    }

    struct Page: ResponseEncodable {
        let tasks: [TaskRecord]
        let next_cursor: String?
    }

    func list(_ request: Request, _ context: SchedulerRequestContext) async throws -> Page {
        let query = request.uri.queryParameters
        var fields: [String: String] = [:]
        var filter = TaskStore.Filter()
        if let text = query["status"].map(String.init) {
            filter.status = TaskStatus(rawValue: text)
            if filter.status == nil { fields["status"] = "must be one of \(TaskStatus.allCases.map(\.rawValue).joined(separator: ", "))" }
        }
        if let text = query["class"].map(String.init) {
            filter.priority = PriorityClass(rawValue: text)
            if filter.priority == nil { fields["class"] = "must be one of critical, high, normal, low" }
        }
        filter.node = query["node"].map(String.init)
        var limit = 50
        if let text = query["limit"] {
            if let value = Int(text), (1...1000).contains(value) {
                limit = value
            } else {
                fields["limit"] = "must be an integer from 1 to 1000"
            }
        }
        var cursor: TaskStore.Cursor?
        if let text = query["cursor"] {
            cursor = TaskStore.Cursor(token: String(text))
            if cursor == nil { fields["cursor"] = "is not a cursor this API returned" }
        }
        guard fields.isEmpty else { throw APIError(.badRequest, .invalidQuery, "the query is invalid", fields: fields) }
        let page = try await store.tasks(filter, limit: limit, after: cursor)
        return Page(tasks: context.scope == .write ? page.tasks : page.tasks.map(\.redacted), next_cursor: page.next?.token)
    }

    func cancel(_ id: UUID, _ context: SchedulerRequestContext) async throws -> TaskRecord {
        try context.requireWrite()
        switch try await store.cancel(id) {
        case .notFound:
            throw APIError(.notFound, .notFound, "no such task")
        case .alreadyEnded(let status):
            throw APIError(.conflict, .alreadyEnded, "the task has already ended as \(status.rawValue)")
        case .cancelled(let attempt, let node):
            if let attempt, let node {
                do {
                    try await publisher.control(ControlMessage(kind: .cancel, node: node, taskID: id, attemptID: attempt))
                } catch {
                    logger.warning(
                        "task \(id) cancelled, but its node \(node) could not be told: \(error); the scheduler ignores whatever it reports")
                }
            }
            guard let task = try await store.task(id) else { throw APIError(.notFound, .notFound, "no such task") }
            return task
        }
    }

    struct Nodes: ResponseEncodable { let nodes: [NodeRecord] }

    func nodes() async throws -> Nodes {
        let entries: [NodeDirectory.Entry]
        do { entries = try await directory.entries() } catch {
            throw APIError(.serviceUnavailable, .redisUnavailable, "the node registry (Redis) cannot be reached")
        }
        let reservations = try await store.reservations()
        let now = Date().timeIntervalSince1970
        let records = entries.map { entry in
            NodeRecord(
                id: entry.id, alive: entry.alive, zone: entry.info?.zone, capacity: entry.info?.capacity, labels: entry.info?.labels,
                latencyMS: entry.info?.latencyMS, power: entry.info?.power, speed: entry.info?.speed,
                reserved: reservations[entry.id]?.resources ?? .zero, activeAttempts: reservations[entry.id]?.active ?? 0,
                load: entry.load, heartbeatAgeSeconds: entry.load.map { max(0, now - $0.at) }, problem: entry.problem)
        }
        return Nodes(nodes: records)
    }

    struct Stats: ResponseEncodable {
        let tasks: TaskStore.Stats
        let nodes_registered: Int?
        let nodes_alive: Int?
        let leader: String?
        let instance: String
    }

    func stats() async throws -> Stats {
        let stats = try await store.stats()
        let entries = try? await directory.entries()
        let leader = try? await redis.get(FogKeys.schedulerLeader)
        return Stats(
            tasks: stats, nodes_registered: entries?.count, nodes_alive: entries?.filter(\.alive).count,
            leader: leader, instance: configuration.instanceID)
    }

    struct Health: ResponseEncodable { let status: String }

    /// `/readyz`: each dependency's state, "ok" or why not.
    struct Readiness: ResponseEncodable {
        let status: String
        let database: String
        let broker: String
        let redis: String
    }

    func readiness() async throws -> EditedResponse<Readiness> {
        func check(_ body: @escaping @Sendable () async throws -> Void) async -> String {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await body() }
                    group.addTask {
                        try await Task.sleep(for: .seconds(2))
                        throw APIError(.serviceUnavailable, .timeout, "no answer within 2 s")
                    }
                    try await group.next()
                    group.cancelAll()
                }
                return "ok"
            } catch {
                return "\(error)"
            }
        }
        let database = await check { try await store.ping() }
        let broker = await check { _ = try await publisher.connection.currentBroker() }
        let redisState = await check { try await redis.ping() }
        let ready = [database, broker, redisState].allSatisfy { $0 == "ok" }
        return EditedResponse(
            status: ready ? .ok : .serviceUnavailable,
            response: Readiness(status: ready ? "ready" : "not ready", database: database, broker: broker, redis: redisState))
    }

    func taskID(_ context: SchedulerRequestContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw APIError(.badRequest, .invalidID, "a task id is a UUID", fields: ["id": "must be a UUID"])
        }
        return id
    }
}

/// Turns every error a handler throws into the API's error shape: 4xx as they are, the
/// database being away as 503, anything else as a logged 500.
struct ErrorMapping: RouterMiddleware {
    typealias Context = SchedulerRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(
                error.status, .http(error.status),
                error.body ?? error.status.reasonPhrase)
        } catch {
            let mapped = APIError.from(error)
            if mapped.status == .internalServerError {
                logger.error("\(request.method) \(request.uri.path): \(error)")
            } else {
                logger.warning("\(request.method) \(request.uri.path): \(error)")
            }
            throw mapped
        }
    }
}

/// A task is answered as it is stored (`GET /v1/tasks/:id`, a cancel, a submit).
extension TaskRecord: ResponseEncodable {}
