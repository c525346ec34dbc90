import FogCore
import Foundation
import PostgresClient
import Scheduler
import TestSupport
import Testing

/// Attacks on the task sandbox (THREATS.md: "nothing the task controls reaches a privileged
/// process"), by a submitter with an ordinary read-write token, against a real scheduler and a
/// fog node running as root. After each, the same processes still run and later tasks succeed.
@Suite(
    "Security: the task sandbox (real processes, as root)", .serialized, TestServices.required,
    .enabled(if: geteuid() == 0, "the fog node must run as root to switch to the task users"))
struct SecuritySandboxTests {
    static let port = 18_601
    static let allowed = "/bin/sh,/bin/echo,/bin/cat,/bin/true"

    func system(_ lab: SchedulerLab, node: String, extra: [String: String] = [:]) async throws -> [SchedulerLab.Process] {
        let (scheduler, nodes) = try await lab.startSystem(
            port: Self.port, nodes: [(node, 4000, 4096)],
            nodeExtra: ["FOG_ALLOWED_COMMANDS": Self.allowed].merging(extra) { $1 })
        return [scheduler] + nodes
    }

    func shell(_ script: String, timeout: Double = 30, env: [String: String] = [:], stdin: [UInt8]? = nil) -> [String: Any] {
        var task: [String: Any] = ["command": ["/bin/sh", "-c", script], "max_attempts": 1, "timeout_s": timeout, "env": env]
        if let stdin { task["stdin"] = Data(stdin).base64EncodedString() }
        return task
    }

    /// A shared object whose constructor writes the uid it runs as into `marker`.
    func preloadLibrary(writing marker: String, in directory: String) throws -> [UInt8] {
        let source = "\(directory)/owned.c"
        let library = "\(directory)/owned.so"
        try """
        #include <stdio.h>
        #include <unistd.h>
        __attribute__((constructor)) static void owned(void) {
            FILE *f = fopen("\(marker)", "w");
            if (f) { fprintf(f, "uid %d\\n", (int)geteuid()); fclose(f); }
        }
        """.write(toFile: source, atomically: true, encoding: .utf8)
        try TestServices.run(["/usr/bin/cc", "-shared", "-fPIC", "-o", library, source])
        return Array(try Data(contentsOf: URL(fileURLWithPath: library)))
    }

    @Test(
        "attack: dynamic-loader variables (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH, GCONV_PATH, ...) with a shared object as stdin never load it as root"
    )
    func loaderVariables() async throws {
        try await withLab { lab in
            let processes = try await system(lab, node: "sbx-ld")
            let marker = "/tmp/fog-preload-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: marker) }
            let library = try preloadLibrary(writing: marker, in: lab.directory)
            // Through the API: refused at submit, naming the variable.
            for variable in ["LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH", "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_TRACE"] {
                let body: [String: Any] = [
                    "kind": "sleep", "args": ["seconds": 0.1], "env": [variable: "/proc/self/fd/0"],
                    "stdin": Data(library).base64EncodedString(),
                ]
                let result = try await lab.http(
                    "POST", "/v1/tasks", port: Self.port, body: try JSONSerialization.data(withJSONObject: body))
                #expect(result.status == 422, "\(variable): \(String(decoding: result.body, as: UTF8.self))")
                #expect(((result.json["error"] as? [String: Any])?["fields"] as? [String: String])?["env"]?.contains(variable) == true)
            }
            // Stored without the API's checks (as by hand, or by an older scheduler): the
            // dispatcher sends it, and the node refuses it before anything runs.
            for variable in ["LD_PRELOAD", "LD_AUDIT"] {
                let spec = TaskSpec(
                    name: "preload", kind: .sleep, args: .init(seconds: 0.1), maxAttempts: 1,
                    env: [variable: "/proc/self/fd/0"], stdin: Data(library).base64EncodedString())
                let stored = try await TaskStore(pool: lab.pool, logger: lab.logger).submit([spec], deadlineRisks: [nil])
                let attempt = lab.lastAttempt(try await lab.ended(stored[0].task.id, port: Self.port))
                #expect(attempt["status"] as? String == "rejected", "\(attempt)")
                #expect((attempt["reason"] as? String)?.contains(variable) == true, "\(attempt)")
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(
                !FileManager.default.fileExists(atPath: marker),
                "the shared object ran: \((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "")")
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    @Test("attack: links to /etc/shadow planted as .stdout, .stderr and .stdin are never followed by root")
    func plantedLinks() async throws {
        try await withLab { lab in
            let processes = try await system(lab, node: "sbx-link")
            let ids = try await lab.submit(
                [
                    shell(
                        """
                        for f in .stdout .stderr .stdin out err; do ln -sf /etc/shadow $f; done
                        ln -sf /etc/shadow ../planted 2>/dev/null; echo planted
                        """)
                ], port: Self.port)
            let attempt = lab.lastAttempt(try await lab.ended(ids[0], port: Self.port))
            #expect(attempt["status"] as? String == "succeeded", "\(attempt)")
            #expect(attempt["stdout_tail"] as? String == "planted\n")
            for field in ["stdout_tail", "stderr_tail", "reason"] {
                #expect((attempt[field] as? String)?.contains("root:") != true, "\(field) holds /etc/shadow")
            }
            #expect(FileManager.default.fileExists(atPath: "/etc/shadow"), "the attempt's cleanup followed a link")
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    @Test("attack: a FIFO and devices as .stdout/.stderr, an endless writer and binary output neither block nor exhaust the node")
    func fifosDevicesAndFloods() async throws {
        try await withLab { lab in
            let processes = try await system(lab, node: "sbx-flood")
            let rssBefore = Self.residentMB(of: processes[1].pid)
            let ids = try await lab.submit(
                [
                    shell("mkfifo .stdout .stderr; echo fifo"),
                    shell("ln -sf /dev/zero .stdout; ln -sf /dev/urandom .stderr; ln -sf /dev/zero .stdin; echo devices"),
                    shell("while :; do echo yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy; done", timeout: 4),
                    shell("cat /dev/zero | head -c 200000000; echo; echo end"),
                    shell("printf 'a\\000b\\377\\376c'; printf 'x\\000' >&2"),
                ], port: Self.port)
            var attempts: [[String: Any]] = []
            for id in ids { attempts.append(lab.lastAttempt(try await lab.ended(id, port: Self.port, timeout: .seconds(90)))) }
            #expect(attempts[0]["status"] as? String == "succeeded" && attempts[0]["stdout_tail"] as? String == "fifo\n", "\(attempts[0])")
            #expect(
                attempts[1]["status"] as? String == "succeeded" && attempts[1]["stdout_tail"] as? String == "devices\n", "\(attempts[1])")
            #expect(attempts[2]["status"] as? String == "timed_out", "\(attempts[2])")
            #expect(((attempts[2]["stdout_tail"] as? String)?.utf8.count ?? 0) <= 4_096)
            #expect((attempts[3]["stdout_tail"] as? String)?.hasSuffix("\nend\n") == true)
            #expect(attempts[4]["stdout_tail"] as? String == "a\u{FFFD}b\u{FFFD}\u{FFFD}c", "\(attempts[4])")
            #expect(attempts[4]["stderr_tail"] as? String == "x\u{FFFD}")
            #expect(attempts[4]["output_lossy"] as? Bool == true)
            let rssAfter = Self.residentMB(of: processes[1].pid)
            print("sandbox: the fog node's memory went from \(rssBefore) MB to \(rssAfter) MB through 200 MB and 4 s of endless output")
            #expect(rssAfter - rssBefore < 100, "the node kept the output in memory")
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    @Test("attack: a task looks for the node's sockets, supplementary groups, capabilities and a way back to root")
    func descriptorsAndPrivileges() async throws {
        try await withLab { lab in
            let processes = try await system(lab, node: "sbx-fd")
            let ids = try await lab.submit(
                [
                    shell(
                        """
                        ls -l /proc/$$/fd/
                        grep -E '^(Uid|Gid|Groups|NoNewPrivs|CapEff|CapPrm):' /proc/$$/status
                        ls .. >/dev/null 2>&1 && echo "listed the work root"
                        mkdir ../planted 2>/dev/null && echo "wrote in the work root"
                        true
                        """)
                ], port: Self.port)
            let attempt = lab.lastAttempt(try await lab.ended(ids[0], port: Self.port))
            let output = attempt["stdout_tail"] as? String ?? ""
            print("sandbox: what a task sees of itself:\n\(output)")
            #expect(attempt["status"] as? String == "succeeded", "\(attempt)")
            #expect(!output.contains("socket:"), "the task inherited a socket of the node")
            // `ls -l` lines end "N -> target": the shell's own descriptors, as the node gave them.
            let descriptors = output.split(separator: "\n").filter { $0.contains(" -> ") }.compactMap { line in
                line.components(separatedBy: " -> ").first?.split(separator: " ").last.flatMap { Int($0) }
            }
            #expect(descriptors.sorted() == [0, 1, 2], "descriptors beyond stdio: \(descriptors)")
            #expect(output.contains("NoNewPrivs:\t1"))
            #expect(output.contains("CapEff:\t0000000000000000"))
            #expect(output.range(of: "Groups:[ \t]*\n", options: .regularExpression) != nil, "supplementary groups kept")
            if geteuid() == 0 { #expect(!output.contains("Uid:\t0"), "ran as root") }
            #expect(!output.contains("listed the work root") && !output.contains("wrote in the work root"))
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    @Test("attack: with FOG_TASK_UIDS, a task reads another submitter's environment in /proc and files in its directory")
    func neighbours() async throws {
        try await withLab { lab in
            let processes = try await system(lab, node: "sbx-uid", extra: ["FOG_TASK_UIDS": "3900000000-3900000015"])
            let secret = "secret-\(UUID().uuidString)"
            let victim = try await lab.submit([shell("echo \(secret) > mine.txt; sleep 8", env: ["VICTIM_TOKEN": secret])], port: Self.port)
            try await lab.waitUntil(timeout: .seconds(20), "the victim to run") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE id = $1 AND status = 'running'", [victim[0]]) == 1
            }
            let victimAttempt = try await lab.pool.query("SELECT id::text FROM attempts WHERE task_id = $1", [victim[0]]).rows[0]
                .decode(at: 0, as: String.self)
            let work = "\(lab.directory)/work-sbx-uid"
            let thief = try await lab.submit(
                [
                    shell(
                        """
                        for p in /proc/[0-9]*; do tr '\\000' '\\n' < $p/environ 2>/dev/null; done | grep -c \(secret)
                        cat \(work)/\(victimAttempt)/mine.txt 2>/dev/null
                        id -u
                        true
                        """)
                ], port: Self.port)
            let attempt = lab.lastAttempt(try await lab.ended(thief[0], port: Self.port))
            let output = attempt["stdout_tail"] as? String ?? ""
            #expect(attempt["status"] as? String == "succeeded", "\(attempt)")
            #expect(output.hasPrefix("0\n"), "the other task's environment was readable: \(output)")
            #expect(!output.contains(secret), "the other task's file was readable")
            let uid = output.split(separator: "\n").last.flatMap { UInt32($0) }
            #expect(uid.map { (3_900_000_000...3_900_000_015).contains($0) } == true, "ran as \(uid.map(String.init) ?? "?")")
            try await lab.expectServing(port: Self.port, processes)
        }
    }

    static func residentMB(of pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "0") ?? 0) / 1024
    }
}
