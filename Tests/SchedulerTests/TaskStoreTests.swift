import FogCore
import Foundation
import Logging
import PostgresClient
import TestSupport
import Testing

@testable import Scheduler

extension TaskStore {
    /// A dispatch round onto one live node with room for every test task; `life` is the
    /// node's registration `started_at` (none when not given).
    func dispatch(epoch: Int, limit: Int, onto node: String, life: Double? = nil) async throws -> (
        attempts: [QueuedAttempt], placement: BatchPlacement
    ) {
        let info = FogNodeInfo(
            id: node, capacity: Resources(cpuMillicores: 1_000_000, memoryMB: 1_000_000, storageMB: 1_000_000),
            zone: "zone-a", startedAt: life ?? 0)
        let placement = BatchPlacement(policy: FirstFitPolicy(), candidates: [NodeCandidate(info: info)])
        return try await dispatch(epoch: epoch, limit: limit, placement: placement, at: Date().timeIntervalSince1970)
    }
}

@Suite("Task store (real PostgreSQL)", .serialized, TestServices.required)
struct TaskStoreTests {
    func withStore(_ body: (TaskStore, SchedulerLab) async throws -> Void) async throws {
        try await withLab { lab in
            let store = TaskStore(pool: lab.pool, logger: Logger(label: "test"))
            try await Migrations.migrate(lab.pool, logger: lab.logger)
            try await body(store, lab)
        }
    }

    func event(_ attempt: TaskStore.QueuedAttempt, _ kind: TaskEvent.Kind, _ outcome: AttemptOutcome? = nil) -> TaskEvent {
        TaskEvent(
            taskID: attempt.message.taskID, attemptID: attempt.message.attemptID, node: attempt.message.node, kind: kind,
            at: Date().timeIntervalSince1970, outcome: outcome)
    }

    @Test("two schedulers migrating at once apply each migration once, and again is a no-op")
    func racingMigrations() async throws {
        try await withLab { lab in
            let other = PostgresPool(configuration: try PostgresConfiguration(url: TestServices.databaseURL), maximumConnections: 1)
            async let first = Migrations.migrate(lab.pool, logger: lab.logger)
            async let second = Migrations.migrate(other, logger: lab.logger)
            let applied = try await [first, second]
            #expect(applied.map(\.count).sorted() == [0, Migrations.all.count])
            #expect(try await Migrations.migrate(other, logger: lab.logger).isEmpty)
            #expect(try await lab.scalar("SELECT count(*) FROM schema_migrations") == Migrations.all.count)
            await other.close()
        }
    }

    @Test("events are applied once: a redelivered batch changes nothing, and the audit trail is append-only")
    func idempotentEvents() async throws {
        try await withStore { store, lab in
            try await store.raiseFence(to: 1)
            let task = try await store.submit([TaskSpec(name: "t", kind: .noop)])[0].task
            let attempt = try await store.dispatch(epoch: 1, limit: 10, onto: "n1").attempts[0]
            let batch = [event(attempt, .started), event(attempt, .finished, .succeeded)]
            #expect(try await store.apply(batch, retry: RetryPolicy()).applied == 2)
            let again = try await store.apply(batch, retry: RetryPolicy())
            #expect(again.applied == 0 && again.duplicates == 2)
            let stored = try #require(try await store.task(task.id))
            #expect(stored.status == .succeeded)
            #expect(stored.events?.map(\.kind) == ["submitted", "queued", "started", "finished"])
            await #expect(throws: PostgresError.self) { try await lab.pool.query("DELETE FROM task_events") }
        }
    }

    @Test("a stale leader's dispatch and take-back write nothing")
    func fencing() async throws {
        try await withStore { store, lab in
            try await store.raiseFence(to: 7)
            _ = try await store.submit([TaskSpec(name: "t", kind: .noop)])
            await #expect(throws: StaleLeader.self) { try await store.dispatch(epoch: 6, limit: 10, onto: "n1") }
            await #expect(throws: StaleLeader.self) { try await store.takeBackAttempts(onLostNode: "n1", epoch: 6, retry: RetryPolicy()) }
            #expect(try await lab.scalar("SELECT count(*) FROM attempts") == 0)
            #expect(try await lab.statusCounts() == ["pending": 1])
            #expect(try await store.dispatch(epoch: 7, limit: 10, onto: "n1").attempts.count == 1)
        }
    }

    @Test("a late event from a superseded attempt is recorded as ignored")
    func supersededEvent() async throws {
        try await withStore { store, lab in
            try await store.raiseFence(to: 1)
            let task = try await store.submit([TaskSpec(name: "t", kind: .noop)])[0].task
            let first = try await store.dispatch(epoch: 1, limit: 10, onto: "lost").attempts[0]
            _ = try await store.apply([event(first, .started)], retry: RetryPolicy())
            #expect(
                try await store.takeBackAttempts(
                    onLostNode: "lost", epoch: 1, retry: RetryPolicy(base: .milliseconds(1), cap: .milliseconds(1))) == 1)
            try await Task.sleep(for: .milliseconds(20))
            let second = try await store.dispatch(epoch: 1, limit: 10, onto: "n2").attempts[0]
            #expect(second.message.attempt == 2)
            let late = try await store.apply([event(first, .finished, .succeeded)], retry: RetryPolicy())
            #expect(late.ignored == 1)
            _ = try await store.apply([event(second, .started), event(second, .finished, .succeeded)], retry: RetryPolicy())
            let stored = try #require(try await store.task(task.id))
            #expect(stored.status == .succeeded)
            #expect(stored.attempts?.map(\.status) == [.lost, .succeeded])
            #expect(stored.events?.contains { $0.kind == "ignored" } == true)
        }
    }

    @Test("a node restarted under its id loses only the attempts that started before its new start time")
    func restartedNode() async throws {
        try await withStore { store, _ in
            try await store.raiseFence(to: 1)
            _ = try await store.submit((0..<3).map { TaskSpec(name: "t\($0)", kind: .noop) })
            let attempts = try await store.dispatch(epoch: 1, limit: 10, onto: "n1").attempts
            try #require(attempts.count == 3)
            let restart = Date().timeIntervalSince1970
            func started(_ attempt: TaskStore.QueuedAttempt, at: Double) -> TaskEvent {
                TaskEvent(taskID: attempt.message.taskID, attemptID: attempt.message.attemptID, node: "n1", kind: .started, at: at)
            }
            // By the node's clock: one started by the process that died, one by the new one, one still queued.
            _ = try await store.apply([started(attempts[0], at: restart - 5), started(attempts[1], at: restart + 1)], retry: RetryPolicy())
            let when = Date(timeIntervalSince1970: restart)
            await #expect(throws: StaleLeader.self) {
                try await store.takeBackAttempts(onRestartedNode: "n1", startedBefore: when, epoch: 0, retry: RetryPolicy())
            }
            #expect(try await store.takeBackAttempts(onRestartedNode: "n1", startedBefore: when, epoch: 1, retry: RetryPolicy()) == 1)
            #expect(
                try await store.takeBackAttempts(onRestartedNode: "n1", startedBefore: when, epoch: 1, retry: RetryPolicy()) == 0, "once")
            var statuses: [AttemptStatus?] = []
            for attempt in attempts { statuses.append(try await store.task(attempt.message.taskID)?.attempts?.first?.status) }
            #expect(statuses == [.lost, .running, .queued])
        }
    }

    @Test("a node's new life takes back the queued attempts placed in an earlier one, not those placed in it; messages say which")
    func newLifeTakesBackQueued() async throws {
        try await withStore { store, _ in
            try await store.raiseFence(to: 1)
            _ = try await store.submit((0..<2).map { TaskSpec(name: "old\($0)", kind: .noop) })
            let old = try await store.dispatch(epoch: 1, limit: 10, onto: "n1", life: 1_000.25).attempts
            _ = try await store.submit([TaskSpec(name: "new", kind: .noop)])
            let new = try await store.dispatch(epoch: 1, limit: 10, onto: "n1", life: 2_000.5).attempts
            try #require(old.count == 2 && new.count == 1)
            #expect(old.map(\.message.nodeStartedAt) == [1_000.25, 1_000.25])
            // Republished unconfirmed attempts carry their life too.
            let unconfirmed = try await store.unpublished(olderThan: .zero)
            #expect(Set(unconfirmed.compactMap(\.message.nodeStartedAt)) == [1_000.25, 2_000.5])
            let when = Date(timeIntervalSince1970: 2_000.5)
            // A node of an older version runs the messages of its earlier life: they stay queued.
            #expect(
                try await store.takeBackAttempts(
                    onRestartedNode: "n1", startedBefore: when, queuedToo: false, epoch: 1, retry: RetryPolicy()) == 0)
            #expect(try await store.takeBackAttempts(onRestartedNode: "n1", startedBefore: when, epoch: 1, retry: RetryPolicy()) == 2)
            var statuses: [AttemptStatus?] = []
            for attempt in old + new { statuses.append(try await store.task(attempt.message.taskID)?.attempts?.first?.status) }
            #expect(statuses == [.lost, .lost, .queued])
            // Placed again at once, not counted as a failure.
            #expect(try await store.dispatch(epoch: 1, limit: 10, onto: "n1", life: 2_000.5).attempts.count == 2)
        }
    }

    @Test("failures retry with backoff, then the task is dead")
    func retriesThenDead() async throws {
        try await withStore { store, lab in
            try await store.raiseFence(to: 1)
            let task = try await store.submit([TaskSpec(name: "t", kind: .noop, maxAttempts: 2)])[0].task
            let retry = RetryPolicy(base: .milliseconds(200), cap: .milliseconds(200))
            let first = try await store.dispatch(epoch: 1, limit: 10, onto: "n1").attempts[0]
            _ = try await store.apply([event(first, .started), event(first, .finished, .failed)], retry: retry)
            #expect(try await store.dispatch(epoch: 1, limit: 10, onto: "n1").attempts.isEmpty, "backoff holds it")
            try await Task.sleep(for: .milliseconds(250))
            let second = try await store.dispatch(epoch: 1, limit: 10, onto: "n1").attempts[0]
            _ = try await store.apply([event(second, .started), event(second, .finished, .timedOut)], retry: retry)
            let stored = try #require(try await store.task(task.id))
            #expect(stored.status == .dead)
            #expect(stored.failures == 2)
            #expect(stored.reason?.contains("2 of 2 attempts failed") == true)
        }
    }

    @Test("the timeout backstop ends an attempt that runs past its timeout, and retries the task")
    func timeoutBackstop() async throws {
        try await withStore { store, _ in
            try await store.raiseFence(to: 1)
            let task = try await store.submit([TaskSpec(name: "t", kind: .sleep, timeoutSeconds: 0.05)])[0].task
            let attempt = try await store.dispatch(epoch: 1, limit: 10, onto: "n1").attempts[0]
            _ = try await store.apply([event(attempt, .started)], retry: RetryPolicy())
            #expect(
                try await store.endOverdueAttempts(epoch: 1, grace: .milliseconds(200), retry: RetryPolicy()).isEmpty, "within its grace")
            try await Task.sleep(for: .milliseconds(400))
            let overdue = try await store.endOverdueAttempts(epoch: 1, grace: .milliseconds(200), retry: RetryPolicy())
            #expect(overdue.map(\.attempt) == [attempt.message.attemptID])
            let stored = try #require(try await store.task(task.id))
            #expect(stored.status == .pending)
            #expect(stored.attempts?.first?.status == .timedOut)
            #expect(stored.events?.last?.kind == "timeout_backstop")
            await #expect(throws: StaleLeader.self) { try await store.endOverdueAttempts(epoch: 0, grace: .zero, retry: RetryPolicy()) }
        }
    }

    @Test("keyset pages cover every task once, newest first")
    func pagination() async throws {
        try await withStore { store, _ in
            _ = try await store.submit((0..<25).map { TaskSpec(name: "t\($0)", kind: .noop) })
            var seen: [UUID] = []
            var cursor: TaskStore.Cursor?
            repeat {
                let page = try await store.tasks(.init(), limit: 10, after: cursor)
                seen += page.tasks.map(\.id)
                cursor = page.next
                if let next = cursor { #expect(TaskStore.Cursor(token: next.token) == next) }
            } while cursor != nil
            #expect(seen.count == 25)
            #expect(Set(seen).count == 25)
        }
    }
}
