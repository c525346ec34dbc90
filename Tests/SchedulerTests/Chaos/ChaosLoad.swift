import Foundation

/// The chaos run's load: a steady stream of small batches through the API of whichever
/// scheduler answers, of six shapes across the four priority classes. Every task is a program
/// that first appends `task id, attempt id, node, time` to the marks file (one `echo` with
/// O_APPEND: one write, so lines never mix), so that each execution is counted outside the store.
actor ChaosLoad {
    /// What a task does after its mark, and how it should end.
    enum Shape: String, CaseIterable, Sendable {
        /// The mark alone: the scheduling path with the least work.
        case noop
        /// The mark, then a sleep of 0.2-0.9 s.
        case sleep
        /// The mark, then a sleep of 10 s: long enough to be running when a node is cut off.
        case long
        /// The mark, then a real pipeline (seq | sort | md5sum).
        case program
        /// Fails its first attempt (exit 3), succeeds on the next.
        case retry
        /// Always fails (exit 4): ends `dead` after its 2 attempts.
        case fail

        var expected: String { self == .fail ? "dead" : "succeeded" }
    }

    struct Accepted: Sendable {
        let shape: Shape
        let phase: Int
    }

    static let batchSize = 5
    static let interval: Duration = .milliseconds(250)
    /// One mix of 20: 8 noop, 5 sleep, 4 program, 2 retry, 1 fail.
    static let mix: [Shape] =
        Array(repeating: .noop, count: 8) + Array(repeating: .sleep, count: 5)
        + Array(repeating: .program, count: 4) + [.retry, .retry, .fail]
    static let classes = ["critical", "high", "normal", "low"]

    let lab: SchedulerLab
    let marks: String
    let ports: [Int]
    private(set) var accepted: [UUID: Accepted] = [:]
    /// Batches the API refused (503 while PostgreSQL is down) or that no scheduler took.
    private(set) var refused: [Int: Int] = [:]
    private var counter = 0
    private var loop: Task<Void, Never>?

    init(lab: SchedulerLab, marks: String, ports: [Int]) {
        self.lab = lab
        self.marks = marks
        self.ports = ports
    }

    func task(_ shape: Shape) -> [String: Any] {
        counter += 1
        let mark = #"echo "$FOG_TASK_ID $FOG_ATTEMPT_ID $FOG_NODE_ID $(date +%s.%N)" >> "$1""#
        let rest =
            switch shape {
            case .noop: ""
            case .sleep: "; sleep 0.\(2 + counter % 8)"
            case .long: "; sleep 10"
            case .program: "; seq 1 20000 | sort -r | md5sum >/dev/null"
            case .retry: #"; [ "$FOG_ATTEMPT" -ge 2 ] || exit 3"#
            case .fail: "; exit 4"
            }
        return [
            "name": "chaos-\(shape.rawValue)", "command": ["/bin/sh", "-c", mark + rest, "mark", marks],
            "class": Self.classes[counter % Self.classes.count], "resources": ["cpu_millicores": 100, "memory_mb": 32],
            "max_attempts": shape == .fail ? 2 : 3, "timeout_s": 60,
        ]
    }

    /// Submits `shapes` as one batch to the first scheduler that takes it; answers the ids
    /// (none when every scheduler refused it).
    @discardableResult
    func submit(_ shapes: [Shape], phase: Int) async -> [UUID] {
        let tasks = shapes.map(task)
        guard let body = try? JSONSerialization.data(withJSONObject: ["tasks": tasks]) else { return [] }
        for port in ports.shuffled() {
            guard let result = try? await lab.http("POST", "/v1/tasks", port: port, body: body) else { continue }
            if result.status == 201 {
                let ids = (result.json["tasks"] as? [[String: Any]] ?? []).compactMap {
                    ($0["id"] as? String).flatMap { UUID(uuidString: $0) }
                }
                for (id, shape) in zip(ids, shapes) { accepted[id] = Accepted(shape: shape, phase: phase) }
                return ids
            }
        }
        refused[phase, default: 0] += 1
        return []
    }

    /// Starts the stream for `phase` (a batch every 250 ms) until `stop()`.
    func start(phase: Int) {
        loop?.cancel()
        loop = Task {
            var index = 0
            while !Task.isCancelled {
                let shapes = (0..<Self.batchSize).map { Self.mix[(index + $0) % Self.mix.count] }
                index += Self.batchSize
                await self.submit(shapes, phase: phase)
                try? await Task.sleep(for: Self.interval)
            }
        }
    }

    func stop() async {
        loop?.cancel()
        await loop?.value
        loop = nil
    }

    func count(phase: Int) -> Int { accepted.values.filter { $0.phase == phase }.count }
}
