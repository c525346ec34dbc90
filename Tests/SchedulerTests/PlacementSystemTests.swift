import FogCore
import Foundation
import PostgresClient
import TestSupport
import Testing

/// Placement in the running system: the default policy, deadline checks at submit, affinity.
@Suite("Placement in the running system (real processes)", .serialized, TestServices.required)
struct PlacementSystemTests {
    static let port = 18_521

    @Test("smart is the default: it explains each choice, flags or refuses deadlines out of reach")
    func smartAndDeadlines() async throws {
        try await withLab { lab in
            try lab.startScheduler("s1", port: Self.port)
            try lab.startFogNode(
                "place-slow", cpu: 2000, memory: 2048, zone: "zone-a",
                extra: ["FOG_NODE_SPEED": "0.5", "FOG_NODE_LATENCIES": "zone-a=2,zone-b=30"])
            try lab.startFogNode(
                "place-fast", cpu: 2000, memory: 2048, zone: "zone-b",
                extra: ["FOG_NODE_SPEED": "2", "FOG_NODE_LATENCIES": "zone-a=30,zone-b=2"])
            try await lab.waitForAPI(port: Self.port)
            try await lab.waitForNodes(["place-slow", "place-fast"])

            // A critical 4 s task from zone-a: 8 s on the near slow node, 2.06 s on the fast one.
            let critical = try await lab.submit(
                [
                    [
                        "kind": "sleep", "args": ["seconds": 0.2], "expected_s": 4, "class": "critical",
                        "constraints": ["origin": "zone-a"], "resources": ["cpu_millicores": 100, "memory_mb": 32],
                    ]
                ], port: Self.port)[0]
            try await lab.waitUntil(timeout: .seconds(30), "the critical task to succeed") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE id = $1 AND status = 'succeeded'", [critical]) == 1
            }
            let shown = try await lab.http("GET", "/v1/tasks/\(critical)", port: Self.port).json
            let attempt = (shown["attempts"] as? [[String: Any]])?.first
            let score = attempt?["score"] as? [String: Any]
            let terms = score?["terms"] as? [String: Double] ?? [:]
            #expect(attempt?["node"] as? String == "place-fast")
            #expect(score?["policy"] as? String == "smart")
            #expect(score?["candidates"] as? Int == 2)
            #expect(abs((terms["expected_completion_s"] ?? 0) - 2.06) < 0.001, "\(terms)")
            for term in ["time", "energy", "fit", "load", "energy_j"] { #expect(terms[term] != nil, "missing \(term)") }

            // A deadline 2 s away for 20 s of work: accepted and flagged, or refused on request.
            let deadline = RFC3339.format(Date().timeIntervalSince1970 + 2)
            var late: [String: Any] = ["kind": "sleep", "args": ["seconds": 0.1], "expected_s": 20, "deadline": deadline]
            let flagged = try await lab.http("POST", "/v1/tasks", port: Self.port, body: try JSONSerialization.data(withJSONObject: late))
            #expect(flagged.status == 201)
            #expect((flagged.json["deadline_risk"] as? String)?.contains("the fastest live node needs 10") == true, "\(flagged.json)")
            late["deadline_policy"] = "refuse"
            let before = try await lab.scalar("SELECT count(*) FROM tasks")
            let refused = try await lab.http(
                "POST", "/v1/tasks", port: Self.port,
                body: try JSONSerialization.data(withJSONObject: ["tasks": [["kind": "noop"], late]]))
            #expect(refused.status == 422)
            #expect(refused.errorCode == "deadline_unreachable")
            #expect(((refused.json["error"] as? [String: Any])?["fields"] as? [String: String])?["tasks[1].deadline"] != nil)
            #expect(try await lab.scalar("SELECT count(*) FROM tasks") == before, "nothing of the batch was stored")

            let wrong = try await lab.http(
                "POST", "/v1/tasks", port: Self.port,
                body: Data(
                    #"{"kind": "noop", "expected_s": -1, "deadline_policy": "maybe"}"#.utf8))
            let fields = (wrong.json["error"] as? [String: Any])?["fields"] as? [String: String] ?? [:]
            #expect(wrong.status == 422 && fields["expected_s"] != nil && fields["deadline_policy"] != nil, "\(wrong.json)")
        }
    }

    @Test("tasks with one affinity key run on the key's node, one at a time under FOG_AFFINITY_MAX_ACTIVE=1")
    func affinity() async throws {
        try await withLab { lab in
            try lab.startScheduler("s1", port: Self.port, extra: ["FOG_AFFINITY_MAX_ACTIVE": "1"])
            let ids = ["aff-n1", "aff-n2", "aff-n3"]
            for id in ids { try lab.startFogNode(id, cpu: 2000, memory: 2048) }
            try await lab.waitForAPI(port: Self.port)
            try await lab.waitForNodes(ids)
            let keyed = (0..<4).map { _ in
                [
                    "kind": "sleep", "args": ["seconds": 0.3], "affinity_key": "camera-7",
                    "resources": ["cpu_millicores": 100, "memory_mb": 32],
                ]
                    as [String: Any]
            }
            _ = try await lab.submit(keyed, port: Self.port)
            try await lab.waitUntil(timeout: .seconds(60), "4 successes") {
                try await lab.scalar("SELECT count(*) FROM tasks WHERE status = 'succeeded'") == 4
            }
            let preferred = Rendezvous.ranked(ids, for: "camera-7")[0]
            #expect(
                try await lab.scalar("SELECT count(*) FROM attempts WHERE node = $1", [preferred]) == 4,
                "every attempt on \(preferred), the key's first node")
            #expect(
                try await lab.scalar(
                    """
                    SELECT count(*) FROM attempts a JOIN attempts b ON a.id < b.id
                    WHERE a.queued_at < b.finished_at AND b.queued_at < a.finished_at
                    """) == 0, "no two attempts of the key were active at once")
        }
    }
}
