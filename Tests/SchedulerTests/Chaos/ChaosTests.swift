import FogCore
import Foundation
import TestSupport
import Testing

/// The chaos run is on only in `make test-chaos`.
let chaosEnabled = ProcessInfo.processInfo.environment["FOG_CHAOS"] == "1"

/// `make test-chaos` (FOG_CHAOS=1): DESIGN.md §7 under fire. A mixed load runs through two
/// schedulers onto three fog nodes while nine faults happen in turn; after each, once every
/// task has ended, the database, the API and the marks the tasks wrote themselves must agree:
/// nothing lost, no task with two successes, nothing left in a queue, and no task run twice
/// unless its node was declared lost while it ran. The table goes to docs/CHAOS.md.
@Suite(
    "Chaos under load (make test-chaos)", .serialized, TestServices.required,
    .enabled(if: chaosEnabled, "the chaos run is `make test-chaos` (FOG_CHAOS=1, about 6 minutes)"))
struct ChaosTests {
    /// Accepted tasks per phase, at least (9 phases: 5,400 or more in all).
    static let perPhase = 600

    struct Fault: Sendable {
        let name: String
        /// Kills, holds, then heals or restarts what it killed; answers what it saw.
        let run: @Sendable (ChaosSystem, Int) async throws -> String
    }

    struct Row {
        let fault: String
        let recovery: Duration?
        let findings: ChaosLedger.Findings
        let left: [String: Int]
        let note: String
    }

    @Test(
        "nine faults in turn under a mixed load of 5,400+ tasks: none lost, no task with two successes, no queue left with a message, every double execution explained"
    )
    func chaos() async throws {
        let cuts = Dictionary(
            uniqueKeysWithValues: try ChaosSystem.nodes.map {
                ($0, try NetworkCut(name: "fog_\($0.replacingOccurrences(of: "-", with: "_"))"))
            })
        defer { for cut in cuts.values { cut.remove() } }
        try await withLab { lab in
            let system = try await ChaosSystem(lab: lab, cuts: cuts)
            let started = ContinuousClock.now
            var rows: [Row] = []
            for (index, fault) in Self.faults.enumerated() {
                rows.append(try await Self.phase(index, fault, system))
                let row = rows[rows.count - 1]
                print("chaos \(index + 1)/\(Self.faults.count) \(fault.name): \(Self.line(row))")
            }
            let elapsed = ContinuousClock.now - started
            let report = Self.report(rows, elapsed: elapsed, refused: await system.load.refused)
            print(report)
            let path =
                ProcessInfo.processInfo.environment["FOG_CHAOS_REPORT"]
                ?? TestServices.repositoryRoot.appendingPathComponent("docs/CHAOS.md").path
            try report.write(toFile: path, atomically: true, encoding: .utf8)
            for row in rows {
                #expect(row.recovery != nil, "\(row.fault): the cluster was not whole again within 180 s")
                #expect(row.findings.problems.isEmpty, "\(row.fault): \(row.findings.problems.prefix(20))")
                #expect(row.left.isEmpty, "\(row.fault): messages left in queues: \(row.left)")
            }
            #expect(rows.reduce(0) { $0 + $1.findings.tasks } >= 5_000)
        }
    }

    /// One fault under load: the load runs, the fault happens, probes wait for recovery, the
    /// load goes on to its quota, stops, every task ends, and the ledger is checked.
    static func phase(_ index: Int, _ fault: Fault, _ system: ChaosSystem) async throws -> Row {
        let load = system.load
        let lab = system.lab
        await load.start(phase: index)
        try await Task.sleep(for: .seconds(6))
        let faultAt = ContinuousClock.now
        var note: String
        var failure: String?
        do {
            note = try await fault.run(system, index)
        } catch {
            note = "The fault failed: \(error)."
            failure = "the fault could not be carried out: \(error)"
        }

        // Recovered: the cluster is whole and a task submitted after the heal has succeeded.
        var probes: [UUID] = []
        var recovery: Duration?
        var missing: String?
        while ContinuousClock.now - faultAt < .seconds(180) {
            probes += await load.submit([.noop], phase: index)
            missing = await system.missing()
            if missing == nil, await system.succeeded(probes) > 0 {
                recovery = ContinuousClock.now - faultAt
                break
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        if recovery == nil { note += " Not whole: \(missing ?? "no probe task succeeded")." }
        let quotaDeadline = ContinuousClock.now + .seconds(90)
        while await load.count(phase: index) < perPhase && ContinuousClock.now < quotaDeadline {
            try await Task.sleep(for: .milliseconds(500))
        }
        await load.stop()

        let accepted = await load.accepted.filter { $0.value.phase == index }
        let ids = Array(accepted.keys)
        let drainDeadline = ContinuousClock.now + .seconds(240)
        while ContinuousClock.now < drainDeadline {
            if await system.unfinished(ids) == 0 { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        var left: [String: Int]? = nil
        let queueDeadline = ContinuousClock.now + .seconds(30)  // quorum-queue counts lag up to 5 s
        while ContinuousClock.now < queueDeadline {
            left = system.leftInQueues()
            if left?.isEmpty == true { break }
            try await Task.sleep(for: .seconds(1))
        }
        var findings = try await ChaosLedger.check(
            lab, accepted: accepted, marks: ChaosLedger.readMarks(system.marks),
            apiPort: ChaosSystem.schedulers["chaos-s1"] ?? 0)
        if system.partition?.phase == index {
            let order = try await system.partitionOrder()
            note += " " + order.note
            findings.disagreements += order.problems
        }
        if let failure { findings.disagreements.append(failure) }
        return Row(fault: fault.name, recovery: recovery, findings: findings, left: left ?? ["(RabbitMQ did not answer)": -1], note: note)
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", duration / .seconds(1))
    }

    static func line(_ row: Row) -> String {
        let doubles = row.findings.doubles.count
        return "recovered \(row.recovery.map(seconds) ?? "never"), \(row.findings.tasks) tasks, \(row.findings.lost.count) lost, "
            + "\(row.findings.duplicateOutcomes.count) duplicate outcomes, \(doubles) double executions "
            + "(\(row.findings.unexplainedDoubles.count) unexplained), \(row.findings.disagreements.count) disagreements. \(row.note)"
            + row.findings.problems.prefix(5).map { "\n  ✗ \($0)" }.joined()
    }

    // MARK: The faults

    static let faults: [Fault] = [
        Fault(name: "1. kill -9 the busiest fog node (restarted at once, as Swarm does)") { system, _ in
            let id = await system.busiestNode()
            let running = try await system.runningAttempts(on: id).count
            system.lab.signal(try system.node(id), SIGKILL)
            try system.startNode(id)
            return "\(id) killed with \(running) attempts running."
        },
        Fault(name: "2. kill -9 the RabbitMQ node leading the busiest fog-node queue (back after 5 s)") { system, _ in
            guard let (node, queue) = system.busiestQueueLeader() else { throw LabError("no fog-node queue has a leader") }
            try await killAndStart(node, after: .seconds(5))
            return "\(node) led \(queue)."
        },
        Fault(name: "3. kill -9 the scheduler leader (restarted after 2 s)") { system, _ in
            guard let leader = await system.leader() else { throw LabError("no scheduler leads") }
            system.lab.signal(try system.scheduler(leader), SIGKILL)
            try await Task.sleep(for: .seconds(2))
            try system.startScheduler(leader)
            return "\(leader) led."
        },
        Fault(name: "4a. kill -9 Redis, restarted with its data after 3 s") { _, _ in
            try await killAndStart("redis", after: .seconds(3))
            return ""
        },
        Fault(name: "4b. kill -9 Redis, restarted empty after 3 s") { _, _ in
            try await killAndStart("redis", after: .seconds(3), as: "redis-empty")
            return ""
        },
        Fault(name: "5. kill -9 PostgreSQL, restarted after 10 s") { _, _ in
            try await killAndStart("postgres", after: .seconds(10))
            return ""
        },
        Fault(name: "6. SIGSTOP the busiest fog node for 10 s (past its 6 s TTL), then SIGCONT") { system, _ in
            let id = await system.busiestNode()
            let running = try await system.runningAttempts(on: id).count
            system.lab.signal(try system.node(id), SIGSTOP)
            try await Task.sleep(for: ChaosSystem.heartbeatTTL + .seconds(4))
            system.lab.signal(try system.node(id), SIGCONT)
            return "\(id) stopped with \(running) attempts running."
        },
        Fault(name: "7. cut the fog node running the most 10 s tasks off from Redis and the broker for 15 s, then heal") { system, phase in
            try await system.cutOff(phase: phase, for: .seconds(15))
        },
        Fault(name: "8. Redis down while a RabbitMQ node restarts (kill -9 rmq3, start it, Redis back once rmq3 is in)") { system, _ in
            try TestServices.kill("redis")
            try TestServices.kill("rmq3")
            try await Task.sleep(for: .seconds(2))
            let restarted = ContinuousClock.now
            try TestServices.start("rmq3")
            while system.runningBrokerNodes() < 3 && ContinuousClock.now - restarted < .seconds(120) {
                try await Task.sleep(for: .seconds(1))
            }
            let rejoined = ContinuousClock.now - restarted
            let whole = system.runningBrokerNodes() == 3
            try TestServices.start("redis")
            return whole
                ? "rmq3 was in the cluster again \(seconds(rejoined)) after it was started, with Redis down."
                : "rmq3 was NOT in the cluster \(seconds(rejoined)) after it was started."
        },
    ]

    /// kill -9 of a test service, then `start-node` (of `start`, when given) after `hold`.
    static func killAndStart(_ service: String, after hold: Duration, as start: String? = nil) async throws {
        try TestServices.kill(service)
        try await Task.sleep(for: hold)
        try TestServices.start(start ?? service)
    }

    // MARK: The report

    static func report(_ rows: [Row], elapsed: Duration, refused: [Int: Int]) -> String {
        let commit =
            (try? TestServices.run(["git", "-C", TestServices.repositoryRoot.path, "rev-parse", "--short", "HEAD"]))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let dirty =
            ((try? TestServices.run(["git", "-C", TestServices.repositoryRoot.path, "status", "--porcelain", "--untracked-files=no"])) ?? "")
                .isEmpty ? "" : " (with uncommitted changes)"
        let formatter = ISO8601DateFormatter()
        var text = """
            # Chaos under load

            `make test-chaos`, run \(formatter.string(from: Date())) at commit \(commit)\(dirty), in \(seconds(elapsed)).
            Two schedulers, three fog nodes, the local 3-node RabbitMQ, Redis and PostgreSQL (test
            profile); a steady load of 20 tasks a second through both APIs (40 % mark-only programs,
            25 % short sleeps, 20 % `seq | sort | md5sum`, 10 % that fail once then succeed, 5 % that
            always fail; the four priority classes in turn; a few 10 s sleeps before the cut). Every
            task's program appends `task attempt node time` to a marks file first, so executions are counted
            outside the store. Faults in turn; after each, once every task has ended, the database, the
            API and the marks are compared. Recovery runs from the fault until the cluster is whole
            (every process, both APIs, a leader, every heartbeat, 3 RabbitMQ nodes) and a task
            submitted after the heal has succeeded; it includes the time a fault is held.

            | fault | recovered | tasks | lost | duplicate outcomes | double executions | left in queues |
            |---|---|---|---|---|---|---|

            """
        for row in rows {
            let f = row.findings
            let why = Dictionary(grouping: f.doubles, by: \.kind)
                .map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
            text +=
                "| \(row.fault) | \(row.recovery.map(seconds) ?? "not within 180 s") | \(f.tasks) | \(f.lost.count) | \(f.duplicateOutcomes.count) | "
                + "\(f.doubles.count)\(why.isEmpty ? "" : " (\(why))") | \(row.left.values.reduce(0, +)) |\n"
        }
        let total = rows.reduce(0) { $0 + $1.findings.tasks }
        text +=
            "\n\(total) tasks in all; batches refused (PostgreSQL down, or no scheduler answering): \(refused.values.reduce(0, +)).\n\n## What each fault did\n\n"
        for row in rows {
            text += "- **\(row.fault)**: \(row.note.isEmpty ? "" : row.note + " ")\(row.findings.disagreements.count) disagreements.\n"
            for double in row.findings.doubles.prefix(5) {
                text += "  - task \(double.task) ran again: \(double.why)\n"
            }
            if row.findings.doubles.count > 5 { text += "  - and \(row.findings.doubles.count - 5) more of the same kind\n" }
            for problem in row.findings.problems.prefix(10) { text += "  - ✗ \(problem)\n" }
        }
        return text
    }
}
