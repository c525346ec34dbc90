import FogCore
import Foundation
import TestSupport
import Testing

/// A bounded fuzz of every decoder of outside input: task requests (HTTP), task messages,
/// events and control messages (AMQP bodies), node registrations and heartbeats (Redis values),
/// settings and durations (FOG_* variables and flags), RFC 3339 times. Each starts from valid
/// samples and mutates them: numbers swapped for extremes (1e300, 2^63, -1), strings for NUL
/// and lone surrogates, bytes flipped, inserted, cut. A trap anywhere ends the whole test
/// process, so a run that finishes is the proof; what a decoder accepts is also checked to
/// keep its limits. Seeded, so that a failure repeats.
@Suite("Fuzzing the decoders of outside input")
struct DecoderFuzzTests {
    static let rounds = 5_000

    @Test("task requests: every accepted one is within the limits a node converts without overflow")
    func taskRequests() throws {
        var fuzzer = Fuzzer(seed: 1)
        var accepted = 0
        for round in 0..<Self.rounds {
            let body = fuzzer.mutate(Samples.taskRequests[round % Samples.taskRequests.count])
            guard let request = try? JSONDecoder().decode(TaskRequest.self, from: Data(body.utf8)),
                let spec = try? request.validated()
            else { continue }
            accepted += 1
            #expect(spec.problems.isEmpty, "\(body)")
            Self.expectConvertible(spec, body)
        }
        #expect(accepted > 100, "the mutations keep some requests valid, so the checks above ran")
    }

    @Test("task messages: a node either refuses one or gets a spec within the limits")
    func taskMessages() {
        var fuzzer = Fuzzer(seed: 2)
        for round in 0..<Self.rounds {
            let body = fuzzer.mutate(Samples.taskMessages[round % Samples.taskMessages.count])
            guard let message = try? WireFormat.decode(TaskMessage.self, from: Array(body.utf8)), message.spec.problems.isEmpty else {
                continue
            }
            Self.expectConvertible(message.spec, body)
        }
    }

    @Test("task batches: a node either refuses one or gets attempts whose specs are within the limits")
    func taskBatches() {
        var fuzzer = Fuzzer(seed: 5)
        for round in 0..<Self.rounds {
            let one = Samples.taskMessages[round % Samples.taskMessages.count]
            let body = fuzzer.mutate(#"{"v": 1, "tasks": [\#(one), \#(one)]}"#)
            guard let batch = try? WireFormat.decode(TaskBatch.self, from: Array(body.utf8)) else { continue }
            for message in batch.tasks where message.spec.problems.isEmpty {
                Self.expectConvertible(message.spec, body)
            }
        }
    }

    @Test("events: whatever a node sends comes out storable")
    func events() {
        var fuzzer = Fuzzer(seed: 3)
        let now = 1_800_000_000.0
        for round in 0..<Self.rounds {
            let body = fuzzer.mutate(Samples.events[round % Samples.events.count])
            guard let batch = try? WireFormat.decode(EventBatch.self, from: Array(body.utf8)) else { continue }
            for event in batch.events {
                let (stored, _) = event.storable(now: now)
                #expect(TaskEvent.Limits.earliest...(now + 86_400) ~= stored.at)
                #expect(![stored.stdoutTail, stored.stderrTail, stored.reason].contains { $0?.utf8.contains(0) == true })
                #expect(stored.exitCode.map { TaskEvent.Limits.exitCode.contains($0) } ?? true)
                #expect(stored.cpuSeconds.map { $0.isFinite } ?? true)
                _ = RFC3339.format(stored.at)
                _ = RFC3339.format(event.at)
            }
        }
    }

    @Test("control messages decode or are refused")
    func controlMessages() {
        var fuzzer = Fuzzer(seed: 4)
        for _ in 0..<Self.rounds {
            let body = fuzzer.mutate(
                #"{"v": 1, "kind": "cancel", "node": "n1", "task_id": "9E0F4B9C-1D57-4E3F-9C39-5D1E9F1C2A11", "attempt_id": "0B5D7C1E-3F2A-4B6C-8D9E-1F2A3B4C5D6E"}"#
            )
            _ = try? WireFormat.decode(ControlMessage.self, from: Array(body.utf8))
        }
    }

    @Test("node registrations: a hash from Redis is read within its limits or refused by field")
    func nodeRegistrations() {
        var fuzzer = Fuzzer(seed: 5)
        let valid = FogNodeInfo(
            id: "n1", capacity: Resources(cpuMillicores: 2000, memoryMB: 1024, storageMB: 10), zone: "zone-a",
            labels: ["gpu": "no"], latencyMS: ["zone-b": 12], power: .init(batteryPercent: 50), startedAt: 1_800_000_000
        )
        .hashFields
        for _ in 0..<Self.rounds {
            var fields = valid
            for _ in 0..<fuzzer.int(1...3) {
                let key = fuzzer.pick(Array(valid.keys) + ["speed", "battery_pct", "unknown"])
                fields[key] = fuzzer.chance(0.15) ? nil : fuzzer.mutate(fields[key] ?? "1")
            }
            let id = fuzzer.chance(0.1) ? fuzzer.pick(["a b", "", "n1\u{0}", String(repeating: "x", count: 65), "ü"]) : "n1"
            do {
                let info = try FogNodeInfo(id: id, hashFields: fields)
                #expect(FogNodeInfo.Limits.cpuMillicores.contains(info.capacity.cpuMillicores))
                #expect(FogNodeInfo.Limits.memoryMB.contains(info.capacity.memoryMB))
                #expect(FogNodeInfo.Limits.speed.contains(info.speed))
                #expect(info.latencyMS.values.allSatisfy { FogNodeInfo.Limits.latencyMS.contains($0) })
                #expect(NodeID(rawValue: info.id) != nil)
                // What placement computes from it stays finite.
                let candidate = NodeCandidate(info: info, reserved: Resources(cpuMillicores: 100, memoryMB: 64), queued: 5)
                let task = TaskSpec(name: "t", kind: .noop, constraints: .init(origin: "zone-b"), expectedSeconds: 604_800)
                #expect(candidate.expectedCompletion(of: task, estimate: 604_800).isFinite)
                _ = candidate.free
            } catch {
                #expect(error.reason.hasPrefix("fog:node:"), "\(error.reason)")
            }
        }
    }

    @Test("heartbeats: a load that decodes is checked before placement reads it")
    func heartbeats() {
        var fuzzer = Fuzzer(seed: 6)
        let valid = String(
            decoding: WireFormat.encode(
                NodeLoad(used: Resources(cpuMillicores: 100, memoryMB: 64), running: 1, queued: 2, at: 1_800_000_000)),
            as: UTF8.self)
        for _ in 0..<Self.rounds {
            let body = fuzzer.mutate(valid)
            guard let load = try? WireFormat.decode(NodeLoad.self, from: Array(body.utf8)), load.problem == nil else { continue }
            #expect((0...10_000_000).contains(load.queued))
            #expect(Double(load.queued).isFinite)
        }
    }

    @Test("settings and durations: a value is read within its range or refused with the variable's name")
    func settings() {
        var fuzzer = Fuzzer(seed: 7)
        let samples = ["5s", "250ms", "2m", "1h", "1.5", "0", "10", "true", "a=1,b=2", "x"]
        for _ in 0..<Self.rounds * 2 {
            let text = fuzzer.mutate(fuzzer.pick(samples))
            if let duration = Settings.parseDuration(text) {
                #expect(duration >= .zero && duration <= Settings.maxDuration, "\(text)")
            }
            let settings = Settings(["FOG_X": text])
            do {
                let value = try settings.int("FOG_X", default: 1, in: 1...100)
                #expect((1...100).contains(value))
            } catch {
                #expect(error.name == "FOG_X")
            }
            _ = try? settings.double("FOG_X", default: 1)
            _ = try? settings.bool("FOG_X", default: true)
            _ = try? settings.duration("FOG_X", default: .seconds(1))
            _ = try? settings.map("FOG_X")
        }
    }

    @Test("RFC 3339: any text parses or is refused, and any number formats")
    func times() {
        var fuzzer = Fuzzer(seed: 8)
        for _ in 0..<Self.rounds {
            let text = fuzzer.mutate("2026-11-23T12:00:05.250+01:00")
            if let seconds = RFC3339.parse(text) { #expect(RFC3339.parse(RFC3339.format(seconds)) != nil, "\(text)") }
        }
        for seconds in [Double.nan, .infinity, -.infinity, 1e300, -1e300, .greatestFiniteMagnitude, 0, -1, 253_402_300_800] {
            #expect(RFC3339.parse(RFC3339.format(seconds)) != nil, "\(seconds)")
        }
    }

    /// What a fog node converts a spec into (bytes, CPU quota, milliseconds) fits in its integers.
    static func expectConvertible(_ spec: TaskSpec, _ body: String) {
        #expect(!spec.resources.memoryMB.multipliedReportingOverflow(by: 1_048_576).overflow, "\(body)")
        #expect(!spec.resources.cpuMillicores.multipliedReportingOverflow(by: 100_000).overflow, "\(body)")
        #expect(Int64(exactly: (spec.timeoutSeconds * 1000).rounded(.up)) != nil, "\(body)")
        #expect(Int(exactly: (spec.timeoutSeconds * 1000).rounded(.up) + 5) != nil, "\(body)")
        if let mb = spec.args.mb { #expect(!mb.multipliedReportingOverflow(by: 1_048_576).overflow, "\(body)") }
        if let command = spec.command { #expect(!command.isEmpty && !command[0].isEmpty) }
        #expect(!spec.env.keys.contains(where: TaskLimits.isLoaderVariable))
    }
}

@Suite("Storable events and output tails")
struct StorableTests {
    @Test("a NUL in a tail is replaced and marked; an impossible time becomes the receipt time")
    func poisonValues() {
        let event = TaskEvent(
            taskID: .init(), attemptID: .init(), node: "n1", kind: .finished, at: 1e300, outcome: .succeeded,
            exitCode: Int(Int32.max) + 1, cpuSeconds: -1, stdoutTail: "a\u{0}b", reason: "r\u{0}")
        let (stored, repairs) = event.storable(now: 1_800_000_000)
        #expect(stored.stdoutTail == "a\u{FFFD}b")
        #expect(stored.reason == "r\u{FFFD}")
        #expect(stored.outputLossy == true)
        #expect(stored.at == 1_800_000_000)
        #expect(stored.exitCode == nil && stored.cpuSeconds == nil)
        #expect(repairs.count == 5, "\(repairs)")
        let clean = TaskEvent(taskID: .init(), attemptID: .init(), node: "n1", kind: .started, at: 1_800_000_000)
        #expect(clean.storable(now: 1_800_000_000).repairs.isEmpty)
    }

    @Test("output: invalid UTF-8 and NUL are lossy, a character cut by the byte limit is not")
    func outputTails() {
        #expect(OutputTail.text(Array("héllo".utf8), truncated: false) == ("héllo", false))
        #expect(OutputTail.text([0x61, 0x00, 0x62], truncated: false) == ("a\u{FFFD}b", true))
        #expect(OutputTail.text([0x61, 0xFF, 0x62], truncated: false) == ("a\u{FFFD}b", true))
        #expect(OutputTail.text(Array("é".utf8).suffix(1) + Array("ok".utf8), truncated: true) == ("ok", false))
        #expect(OutputTail.text(Array("\u{FFFD}".utf8), truncated: false) == ("\u{FFFD}", false), "the program's own U+FFFD")
    }
}

/// Valid samples of each kind of outside input, for the fuzzer to start from.
enum Samples {
    static let taskRequests = [
        #"{"kind": "sleep", "args": {"seconds": 1.5}, "class": "high", "resources": {"cpu_millicores": 250, "memory_mb": 64, "storage_mb": 0}, "timeout_s": 30, "max_attempts": 2}"#,
        #"{"command": ["/bin/echo", "hi"], "env": {"MODE": "fast"}, "stdin": "aGVsbG8=", "constraints": {"labels": {"gpu": "no"}, "origin": "zone-a", "max_latency_ms": 20}}"#,
        #"{"kind": "alloc", "args": {"mb": 32, "seconds": 1}, "deadline": "2026-11-23T12:00:05Z", "expected_s": 2, "affinity_key": "cam-1", "idempotency_key": "k-1"}"#,
        #"{"kind": "cpu", "args": {"millicores": 500, "seconds": 2, "exit_code": 3}, "name": "burn", "deadline_policy": "flag"}"#,
    ]

    static let spec =
        #"{"name": "t", "kind": "sleep", "args": {"seconds": 1}, "class": "normal", "resources": {"cpu_millicores": 100, "memory_mb": 64, "storage_mb": 0}, "constraints": {"labels": {}}, "timeout_s": 30, "max_attempts": 3, "env": {"A": "b"}}"#
    static let taskMessages = [
        #"{"v": 1, "task_id": "9E0F4B9C-1D57-4E3F-9C39-5D1E9F1C2A11", "attempt_id": "0B5D7C1E-3F2A-4B6C-8D9E-1F2A3B4C5D6E", "attempt": 1, "epoch": 3, "node": "n1", "spec": \#(spec)}"#,
        #"{"v": 1, "task_id": "9E0F4B9C-1D57-4E3F-9C39-5D1E9F1C2A11", "attempt_id": "0B5D7C1E-3F2A-4B6C-8D9E-1F2A3B4C5D6E", "attempt": 2, "epoch": 3, "node": "n1", "spec": {"name": "c", "command": ["/bin/sh", "-c", "echo"], "args": {}, "class": "low", "resources": {"cpu_millicores": 100, "memory_mb": 64, "storage_mb": 0}, "constraints": {"labels": {}}, "timeout_s": 1e2, "max_attempts": 1, "env": {}, "stdin": "AAE="}}"#,
    ]

    static let events = [
        #"{"v": 1, "events": [{"task_id": "9E0F4B9C-1D57-4E3F-9C39-5D1E9F1C2A11", "attempt_id": "0B5D7C1E-3F2A-4B6C-8D9E-1F2A3B4C5D6E", "node": "n1", "kind": "finished", "at": 1800000000.5, "outcome": "failed", "exit_code": 2, "cpu_seconds": 0.25, "peak_memory_mb": 12.5, "stdout_tail": "out", "stderr_tail": "err", "reason": "exited 2", "epoch": 3}]}"#,
        #"{"v": 1, "events": [{"task_id": "9E0F4B9C-1D57-4E3F-9C39-5D1E9F1C2A11", "attempt_id": "0B5D7C1E-3F2A-4B6C-8D9E-1F2A3B4C5D6E", "node": "n1", "kind": "started", "at": 1800000000}]}"#,
    ]
}
