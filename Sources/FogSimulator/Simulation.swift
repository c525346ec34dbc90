import FogCore
import HeapModule

/// A deterministic discrete-event simulation of the scheduler on a virtual clock. It drives
/// the live dispatcher's placement code (`BatchPlacement` with a `PlacementPolicy`) and keeps
/// the live rules: pending tasks in class, deadline, age order, at most `batch` of them per
/// dispatch round, room reserved from placement to completion, a failed node's work placed
/// again once the failure is detected (the heartbeat TTL).
public struct Simulation {
    public struct Options: Sendable {
        /// Pending tasks looked at per dispatch round (`FOG_DISPATCH_BATCH`).
        public var batch = 500
        public init() {}
    }

    let workload: Workload
    let scenario: Scenario
    let options: Options

    public init(scenario: Scenario, workload: Workload, options: Options = .init()) {
        self.scenario = scenario
        self.workload = workload
        self.options = options
    }

    /// Runs the workload under `policy` to the end and measures it.
    public func run(_ policy: any PlacementPolicy) -> SimulationResult {
        var engine = Engine(scenario: scenario, workload: workload, options: options, policy: policy)
        engine.run()
        return engine.result()
    }
}

private enum EventKind {
    case finish(task: Int, attempt: Int)
    case down(node: Int)
    case up(node: Int)
    case retry(task: Int)
}

private struct Event: Comparable {
    let time: Double
    let sequence: Int
    let kind: EventKind
    static func < (a: Event, b: Event) -> Bool { (a.time, a.sequence) < (b.time, b.sequence) }
    static func == (a: Event, b: Event) -> Bool { (a.time, a.sequence) == (b.time, b.sequence) }
}

/// Events in time order (ties in the order they were scheduled), on swift-collections' Heap.
private struct EventQueue {
    private var heap = Heap<Event>()
    private var sequence = 0
    var nextTime: Double? { heap.min?.time }

    mutating func push(_ time: Double, _ kind: EventKind) {
        sequence += 1
        heap.insert(Event(time: time, sequence: sequence, kind: kind))
    }

    mutating func pop() -> Event { heap.removeMin() }
}

/// Pending tasks in dispatch order: per class, sorted by (deadline, arrival, index). Placed
/// tasks are skipped where they lie and swept out when they outnumber the waiting ones.
private struct PendingQueue {
    private var buckets: [[Int]] = Array(repeating: [], count: 4)
    private var gone = [Int](repeating: 0, count: 4)
    private var waiting: [Bool]
    private(set) var count = 0

    init(tasks: Int) { waiting = Array(repeating: false, count: tasks) }

    mutating func insert(_ task: Int, priority: Int, keys: [(Double, Double, Int)]) {
        let key = keys[task]
        var (lo, hi) = (0, buckets[priority].count)
        while lo < hi {
            let mid = (lo + hi) / 2
            if keys[buckets[priority][mid]] < key { lo = mid + 1 } else { hi = mid }
        }
        buckets[priority].insert(task, at: lo)
        waiting[task] = true
        count += 1
    }

    /// Up to `limit` waiting tasks, in order.
    func first(_ limit: Int) -> [Int] {
        var result: [Int] = []
        for bucket in buckets {
            for task in bucket where waiting[task] {
                result.append(task)
                if result.count == limit { return result }
            }
        }
        return result
    }

    mutating func remove(_ task: Int, priority: Int) {
        guard waiting[task] else { return }
        waiting[task] = false
        count -= 1
        gone[priority] += 1
        if gone[priority] > 64 && gone[priority] * 2 > buckets[priority].count {
            let waiting = self.waiting
            buckets[priority].removeAll { !waiting[$0] }
            gone[priority] = 0
        }
    }
}

private struct Engine {
    enum State { case future, waiting, placed, done, refused }

    let scenario: Scenario
    let workload: Workload
    let options: Simulation.Options
    var placement: BatchPlacement

    var events = EventQueue()
    var pending: PendingQueue
    var nextArrival = 0
    var now = 0.0

    var state: [State]
    var attempt: [Int]
    var node: [Int]
    var finished: [Double]
    var waitKey: [(Double, Double, Int)]
    var lost = 0

    // Per node.
    var alive: [Bool]
    var reserved: [Resources]
    var active: [Int]
    var energyJ: [Double]
    var energyAt: [Double]
    var busyCPUSeconds: [Double]
    var slot: [Int?]
    var networkMB = 0.0
    /// The most attempts of one affinity key active at once.
    var peakActivePerKey = 0
    /// Every node, empty: what submit checks a task against.
    let everyNode: [NodeCandidate]

    init(scenario: Scenario, workload: Workload, options: Simulation.Options, policy: any PlacementPolicy) {
        self.scenario = scenario
        self.workload = workload
        self.options = options
        let n = workload.tasks.count
        state = Array(repeating: .future, count: n)
        pending = PendingQueue(tasks: n)
        attempt = Array(repeating: 0, count: n)
        node = Array(repeating: -1, count: n)
        finished = Array(repeating: 0, count: n)
        waitKey = workload.tasks.enumerated().map { i, t in (t.deadline ?? .infinity, t.arrival, i) }
        let m = workload.nodes.count
        alive = Array(repeating: true, count: m)
        reserved = Array(repeating: .zero, count: m)
        active = Array(repeating: 0, count: m)
        energyJ = Array(repeating: 0, count: m)
        energyAt = Array(repeating: 0, count: m)
        busyCPUSeconds = Array(repeating: 0, count: m)
        slot = Array(0..<m).map { Optional($0) }
        placement = BatchPlacement(
            policy: policy, candidates: [],
            limiter: AffinityLimiter(
                maxActive: scenario.affinity?.maxActive, perSecond: scenario.affinity?.maxPerSecond))
        everyNode = workload.nodes.map { NodeCandidate(info: $0) }
        rebuildCandidates()
        let index = Dictionary(uniqueKeysWithValues: workload.nodes.enumerated().map { ($1.id, $0) })
        for failure in workload.failures {
            guard let n = index[failure.node] else { continue }
            events.push(failure.atSeconds, .down(node: n))
            if let down = failure.downSeconds { events.push(failure.atSeconds + down, .up(node: n)) }
        }
    }

    var detection: Double { scenario.detectionSeconds ?? 6 }

    mutating func run() {
        let tasks = workload.tasks
        while true {
            let arrivalTime = nextArrival < tasks.count ? tasks[nextArrival].arrival : .infinity
            let eventTime = events.nextTime ?? .infinity
            if arrivalTime == .infinity && eventTime == .infinity { break }
            if arrivalTime <= eventTime {
                now = arrivalTime
                arrive(nextArrival)
                nextArrival += 1
            } else {
                now = eventTime
                handle(events.pop().kind)
            }
            // Like the live dispatcher, a round runs once the moment's changes are in.
            let soon = min(nextArrival < tasks.count ? tasks[nextArrival].arrival : .infinity, events.nextTime ?? .infinity)
            if soon > now && pending.count > 0 { dispatch() }
        }
        for n in workload.nodes.indices where alive[n] { accrue(n) }
    }

    mutating func arrive(_ task: Int) {
        let spec = workload.tasks[task].spec
        // What the API refuses at submit: what no node could ever hold, or (when the task asks)
        // a deadline that no live node can meet.
        if case .failure = PlacementConstraints.feasible(for: spec, among: everyNode) {
            state[task] = .refused
            return
        }
        if spec.deadlinePolicy == .refuse,
            PlacementConstraints.deadlineRisk(for: spec, nodes: liveInfos, at: Workload.epoch + now) != nil
        {
            state[task] = .refused
            return
        }
        enqueue(task)
    }

    var liveInfos: [FogNodeInfo] { workload.nodes.indices.filter { alive[$0] }.map { workload.nodes[$0] } }

    mutating func enqueue(_ task: Int) {
        state[task] = .waiting
        pending.insert(task, priority: workload.tasks[task].spec.priority.rank, keys: waitKey)
    }

    mutating func handle(_ kind: EventKind) {
        switch kind {
        case .finish(let task, let number):
            guard state[task] == .placed, attempt[task] == number else { return }
            let n = node[task]
            release(task, from: n)
            state[task] = .done
            finished[task] = now
        case .down(let n):
            guard alive[n] else { return }
            accrue(n)
            alive[n] = false
            for task in workload.tasks.indices where state[task] == .placed && node[task] == n {
                release(task, from: n)
                state[task] = .future
                lost += 1
                events.push(now + detection, .retry(task: task))
            }
            rebuildCandidates()
        case .up(let n):
            guard !alive[n] else { return }
            alive[n] = true
            energyAt[n] = now
            rebuildCandidates()
        case .retry(let task):
            enqueue(task)
        }
    }

    mutating func release(_ task: Int, from n: Int) {
        accrue(n)
        if let key = workload.tasks[task].spec.affinityKey { placement.activeByKey[key, default: 1] -= 1 }
        reserved[n] = reserved[n] - workload.tasks[task].spec.resources
        active[n] -= 1
        if let s = slot[n] {
            placement.candidates[s].reserved = reserved[n]
            placement.candidates[s].active -= 1
        }
    }

    /// Adds node `n`'s energy since it was last counted at its utilisation then.
    mutating func accrue(_ n: Int) {
        let info = workload.nodes[n]
        let utilisation = min(1, Double(reserved[n].cpuMillicores) / Double(info.capacity.cpuMillicores))
        let watts = info.power.idleWatts + (info.power.maxWatts - info.power.idleWatts) * utilisation
        energyJ[n] += watts * (now - energyAt[n])
        busyCPUSeconds[n] += Double(reserved[n].cpuMillicores) / 1000 * (now - energyAt[n])
        energyAt[n] = now
    }

    mutating func rebuildCandidates() {
        placement.candidates = []
        for n in workload.nodes.indices {
            if alive[n] {
                slot[n] = placement.candidates.count
                placement.candidates.append(
                    NodeCandidate(
                        info: workload.nodes[n], reserved: reserved[n],
                        active: active[n], order: n))
            } else {
                slot[n] = nil
            }
        }
    }

    mutating func dispatch() {
        // Nothing fits anywhere: skip the round (the live dispatcher would find every task
        // waiting). Per resource, the most any live node has free.
        var most = Resources.zero
        for c in placement.candidates {
            let free = c.free
            most = Resources(
                cpuMillicores: max(most.cpuMillicores, free.cpuMillicores), memoryMB: max(most.memoryMB, free.memoryMB),
                storageMB: max(most.storageMB, free.storageMB))
        }
        let window = pending.first(options.batch)
        let offered = window.filter { most.fits(workload.tasks[$0].spec.resources) }
        guard !offered.isEmpty else { return }
        let decisions = placement.place(offered.map { workload.tasks[$0].spec }, at: Workload.epoch + now)
        var placed = 0
        for (task, decision) in zip(offered, decisions) {
            guard case .place(let id, _) = decision, let n = workload.nodes.firstIndex(where: { $0.id == id }) else { continue }
            start(task, on: n)
            placed += 1
        }
        // A full round: the live dispatcher goes again at once.
        if placed == options.batch { dispatch() }
    }

    mutating func start(_ task: Int, on n: Int) {
        let t = workload.tasks[task]
        accrue(n)
        reserved[n] = reserved[n] + t.spec.resources
        active[n] += 1
        state[task] = .placed
        node[task] = n
        attempt[task] += 1
        pending.remove(task, priority: t.spec.priority.rank)
        if let key = t.spec.affinityKey { peakActivePerKey = max(peakActivePerKey, placement.activeByKey[key, default: 0]) }
        let info = workload.nodes[n]
        // The same network time that placement expects: a live node always has a slot.
        let network = placement.candidates[slot[n]!].networkSeconds(for: t.spec)
        if let origin = t.spec.constraints.origin, origin != info.zone { networkMB += t.dataMB }
        events.push(now + network + t.work / info.speed, .finish(task: task, attempt: attempt[task]))
    }

    func result() -> SimulationResult {
        SimulationResult.measure(
            scenario: scenario, workload: workload, finished: finished, done: state.map { $0 == .done },
            refused: state.map { $0 == .refused }, energyJ: energyJ, busyCPUSeconds: busyCPUSeconds,
            networkMB: networkMB, lost: lost, peakActivePerKey: peakActivePerKey)
    }
}
