import FogCore
import Foundation
import Testing

@Suite("Task requests")
struct TaskRequestTests {
    func decode(_ json: String) throws -> TaskRequest {
        try JSONDecoder().decode(TaskRequest.self, from: Data(json.utf8))
    }

    @Test("a minimal request gets the documented defaults")
    func defaults() throws {
        let spec = try decode(#"{"kind": "noop"}"#).validated()
        #expect(spec.priority == .normal)
        #expect(spec.resources == Resources(cpuMillicores: 100, memoryMB: 64, storageMB: 0))
        #expect(spec.timeoutSeconds == 300)
        #expect(spec.maxAttempts == 3)
        #expect(spec.name == "noop")
    }

    @Test("a deadline is normalised to UTC with milliseconds")
    func deadline() throws {
        let spec = try decode(#"{"kind": "noop", "deadline": "2026-11-23T13:00:05+01:00"}"#).validated()
        #expect(spec.deadline == "2026-11-23T12:00:05.000Z")
    }

    @Test(
        "invalid values are named field by field",
        arguments: [
            (#"{}"#, "command"),
            (#"{"kind": "noop", "command": ["/bin/true"]}"#, "command"),
            (#"{"kind": "bake"}"#, "kind"),
            (#"{"kind": "noop", "class": "urgent"}"#, "class"),
            (#"{"kind": "noop", "resources": {"cpu_millicores": -5}}"#, "resources.cpu_millicores"),
            (#"{"kind": "noop", "resources": {"memory_mb": 0}}"#, "resources.memory_mb"),
            (#"{"kind": "noop", "resources": {"storage_mb": -1}}"#, "resources.storage_mb"),
            (#"{"kind": "noop", "timeout_s": 0}"#, "timeout_s"),
            (#"{"kind": "noop", "max_attempts": 0}"#, "max_attempts"),
            (#"{"kind": "noop", "deadline": "tomorrow"}"#, "deadline"),
            (#"{"kind": "noop", "stdin": "***"}"#, "stdin"),
            (#"{"kind": "noop", "env": {"A=B": "x"}}"#, "env"),
            (#"{"kind": "noop", "priority": "high"}"#, "priority"),
            (#"{"kind": "noop", "constraints": {"max_latency_ms": 5}}"#, "constraints.origin"),
            (#"{"command": [""]}"#, "command"),
            (#"{"kind": "sleep", "args": {"seconds": -1}}"#, "args.seconds"),
            (#"{"kind": "sleep", "env": {"LD_PRELOAD": "/proc/self/fd/0"}}"#, "env"),
            (#"{"kind": "sleep", "env": {"GCONV_PATH": "."}}"#, "env"),
            (#"{"kind": "noop", "name": "a\u0000b"}"#, "name"),
            (#"{"kind": "noop", "constraints": {"labels": {"k": "a\u0000"}}}"#, "constraints.labels"),
            (#"{"kind": "noop", "constraints": {"zone": "\u0000"}}"#, "constraints.zone"),
            (#"{"kind": "noop", "timeout_s": 1e300}"#, "timeout_s"),
        ])
    func invalid(json: String, field: String) throws {
        let request = try decode(json)
        #expect(throws: TaskValidationError.self) { try request.validated() }
        do {
            _ = try request.validated()
        } catch {
            #expect(error.fields[field] != nil, "\(error.fields)")
        }
    }

    @Test("a huge argv is refused")
    func hugeArgv() throws {
        let request = TaskRequest(command: ["/bin/echo"] + Array(repeating: String(repeating: "x", count: 100), count: 2_000))
        #expect(throws: TaskValidationError.self) { try request.validated() }
    }
}

@Suite("Task lifecycle")
struct TaskLifecycleTests {
    let queued = TaskLifecycle.Snapshot(taskStatus: .queued, attemptStatus: .queued, isCurrent: true, failures: 0, maxAttempts: 3)
    var running: TaskLifecycle.Snapshot {
        var s = queued
        s.taskStatus = .running
        s.attemptStatus = .running
        return s
    }

    @Test("started, then succeeded")
    func happyPath() {
        #expect(TaskLifecycle.decide(.started, given: queued) == .start)
        #expect(
            TaskLifecycle.decide(.finished(.succeeded), given: running)
                == .end(attempt: .succeeded, task: .succeeded, failures: 0, backoffFor: nil))
    }

    @Test("a redelivered event is a duplicate")
    func duplicates() {
        #expect(TaskLifecycle.decide(.started, given: running) == .duplicate)
        var done = running
        done.attemptStatus = .succeeded
        done.taskStatus = .succeeded
        #expect(TaskLifecycle.decide(.finished(.succeeded), given: done) == .duplicate)
    }

    @Test("events of a superseded attempt are ignored")
    func superseded() {
        var lost = running
        lost.attemptStatus = .lost
        lost.isCurrent = false
        guard case .ignore = TaskLifecycle.decide(.finished(.succeeded), given: lost) else {
            Issue.record("a late success of a lost attempt must be ignored")
            return
        }
        guard case .ignore = TaskLifecycle.decide(.started, given: lost) else {
            Issue.record("a late start of a lost attempt must be ignored")
            return
        }
    }

    @Test("failures retry with backoff until max_attempts, then dead")
    func retries() {
        #expect(
            TaskLifecycle.decide(.finished(.failed), given: running) == .end(attempt: .failed, task: .pending, failures: 1, backoffFor: 1))
        var last = running
        last.failures = 2
        #expect(
            TaskLifecycle.decide(.finished(.timedOut), given: last) == .end(attempt: .timedOut, task: .dead, failures: 3, backoffFor: nil))
    }

    @Test(
        "outcomes that would repeat end the task at once",
        arguments: [
            (AttemptOutcome.resourceExceeded, TaskStatus.resourceExceeded), (.rejected, .failed),
        ])
    func terminal(outcome: AttemptOutcome, status: TaskStatus) {
        guard case .end(_, let task, _, nil) = TaskLifecycle.decide(.finished(outcome), given: running) else {
            Issue.record("expected an end")
            return
        }
        #expect(task == status)
    }

    @Test("a lost node: queued attempts retry freely, running ones count as a failure")
    func nodeLost() {
        #expect(TaskLifecycle.decide(.nodeLost, given: queued) == .end(attempt: .lost, task: .pending, failures: 0, backoffFor: nil))
        #expect(TaskLifecycle.decide(.nodeLost, given: running) == .end(attempt: .lost, task: .pending, failures: 1, backoffFor: 1))
    }

    @Test("a queued attempt whose message never arrived is placed again at once, once")
    func neverStarted() {
        #expect(TaskLifecycle.decide(.neverStarted, given: queued) == .end(attempt: .lost, task: .pending, failures: 0, backoffFor: nil))
        #expect(TaskLifecycle.decide(.neverStarted, given: running) == .duplicate, "it started meanwhile")
    }

    @Test("an interrupted attempt retries without counting")
    func interrupted() {
        #expect(
            TaskLifecycle.decide(.finished(.interrupted), given: running)
                == .end(attempt: .interrupted, task: .pending, failures: 0, backoffFor: nil))
    }

    @Test("retry backoff grows, is capped, and keeps its jitter within half")
    func backoff() {
        let policy = RetryPolicy(base: .seconds(1), cap: .seconds(10))
        #expect(policy.delay(afterFailures: 1, random: 0) == .milliseconds(500))
        #expect(policy.delay(afterFailures: 1, random: 1) == .seconds(1))
        #expect(policy.delay(afterFailures: 3, random: 1) == .seconds(4))
        #expect(policy.delay(afterFailures: 30, random: 1) == .seconds(10))
    }
}
