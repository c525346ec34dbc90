import FogCore
import Foundation

/// What a fog node decides about the attempts that reach it, as a value: which to drop as
/// copies or as placed in an earlier life, which to refuse, which wait in the local buffer
/// (per class), which to start (highest class first, only while they fit in the room left and,
/// with a uid pool, while a uid is free), when a delivery is settled, what a fence, a cancel and
/// a drain do. One `mutating func` per event returns the actions to take, in order; the agent
/// (`FogNodeAgent`) carries them out against the broker and the processes. No I/O and no clock:
/// the times of life are given in, so every case is tested without a server.
///
/// `Delivery` is what the broker's acknowledgement needs (`AMQPDelivery`; anything in tests).
struct Admission<Delivery: Sendable>: Sendable {
    /// Which delivery an attempt came in (a delivery may carry a batch of them).
    typealias ShareID = Int

    enum Action: Sendable {
        /// Every attempt of this delivery is settled: ack it.
        case ack(Delivery)
        /// Give the delivery back to its queue (a drain: its attempts are placed again or
        /// dropped as copies).
        case requeue(Delivery)
        /// Dead-letter the delivery to `fog.dead` (an attempt in it is for another node).
        case reject(Delivery, reason: String)
        /// Start the attempt (as `identity`); `share` is settled once its `started` is confirmed.
        case start(TaskMessage, identity: TaskIdentity?, share: ShareID)
        /// Report the attempt `rejected` with this reason, then go on with the next action.
        case refuse(TaskMessage, reason: String)
        /// Stop the running attempt's process.
        case stop(UUID, AttemptProcess.StopReason)
        /// The attempt is dropped, for this reason (for the log); its delivery is settled apart.
        case dropped(UUID, reason: String)
    }

    struct Buffered: Sendable {
        let message: TaskMessage
        let share: ShareID
    }

    struct Share: Sendable {
        let delivery: Delivery
        /// Attempts of the delivery not settled yet: it is acked when the last one is.
        var unsettled: Int
    }

    struct Running: Sendable {
        let message: TaskMessage
        let identity: TaskIdentity?
    }

    let node: String
    let capacity: Resources
    let allowedCommands: Set<String>
    /// This node's life (seconds since 1970, as registered in `started_at`): its start, then
    /// each fence. A message placed in an earlier life is dropped: the scheduler takes such
    /// attempts back when it sees the new life (or the node lost), and places them again.
    private(set) var life: Double
    private(set) var users: TaskUsers
    private(set) var buffered: [PriorityClass: [Buffered]] = [:]
    private(set) var running: [UUID: Running] = [:]
    private(set) var used = Resources.zero
    /// Attempts started here whose last event is not confirmed yet (no-ops included, which
    /// never count as running): a draining node waits for them before it closes its channels.
    private(set) var unsettled = 0
    private(set) var shares: [ShareID: Share] = [:]
    private var nextShare: ShareID = 0
    /// Attempts started or cancelled here lately, to drop redeliveries and republished copies.
    private var seen = RecentIDs(limit: 20_000)
    private var cancelled = RecentIDs(limit: 20_000)
    private(set) var fenced = false
    private(set) var draining = false

    init(node: String, capacity: Resources, allowedCommands: Set<String>, life: Double, users: TaskUsers) {
        self.node = node
        self.capacity = capacity
        self.allowedCommands = allowedCommands
        self.life = life
        self.users = users
    }

    var waiting: Int { buffered.values.reduce(0) { $0 + $1.count } }

    func load(at now: Double) -> NodeLoad {
        NodeLoad(used: used, running: running.count, queued: waiting, at: now, draining: draining)
    }

    // MARK: Events

    /// A delivery holding `attempts` (one, or a batch). Each is dropped as a copy, refused, or
    /// buffered; the delivery is acked when the last of them is settled, or dead-lettered
    /// whole when one of them was placed on another node.
    mutating func received(_ delivery: Delivery, attempts: [TaskMessage]) -> [Action] {
        if let stray = attempts.first(where: { $0.node != node }) {
            return [.reject(delivery, reason: "attempt \(stray.attemptID) was placed on node \(stray.node.prefix(80)), not on this one")]
        }
        guard !attempts.isEmpty else { return [.ack(delivery)] }
        let share = nextShare
        nextShare &+= 1
        shares[share] = Share(delivery: delivery, unsettled: attempts.count)
        var actions: [Action] = []
        for message in attempts { actions += take(message, share: share) }
        return actions + startWhatFits()
    }

    /// The attempt's `started` event is confirmed (or, for one refused at its start, its
    /// report went out): its part of the delivery is settled.
    mutating func announced(share: ShareID) -> [Action] { settle(share) }

    /// The attempt's last event is confirmed.
    mutating func attemptSettled() { unsettled = max(0, unsettled - 1) }

    /// The attempt's process ended: its room and uid are free for the next.
    mutating func ended(_ attemptID: UUID) -> [Action] {
        guard let entry = running.removeValue(forKey: attemptID) else { return [] }
        users.giveBack(entry.identity)
        used = used - entry.message.spec.resources
        return startWhatFits()
    }

    /// A control message: stop the named attempt if it runs here; drop it from the buffer (and
    /// settle its part of the delivery) if it waits here; drop it if it arrives later.
    mutating func cancel(_ attemptID: UUID) -> [Action] {
        cancelled.insert(attemptID)
        var actions: [Action] = []
        if running[attemptID] != nil { actions.append(.stop(attemptID, .cancel)) }
        for priority in PriorityClass.allCases {
            guard let index = buffered[priority]?.firstIndex(where: { $0.message.attemptID == attemptID }),
                let item = buffered[priority]?.remove(at: index)
            else { continue }
            actions.append(.dropped(attemptID, reason: "cancelled while it waited in the buffer"))
            actions += settle(item.share)
        }
        return actions
    }

    /// The heartbeat could not be renewed in time: the scheduler may be placing this node's
    /// attempts elsewhere. This life ends at `now`: take no work, stop what runs (its outcome
    /// would be ignored), drop what waits (settling its deliveries), as every message of this
    /// life that comes later. The scheduler places them again when the node registers its new
    /// life, or declares it lost. (Given back to the queue, they would come back and run beside
    /// their new placements.)
    mutating func fence(now: Double) -> [Action] {
        guard !fenced else { return [] }
        fenced = true
        life = max(life + 0.001, now)
        var actions: [Action] = running.keys.sorted().map { .stop($0, .fence) }
        let items = buffered.values.flatMap { $0 }
        buffered = [:]
        for item in items {
            seen.insert(item.message.attemptID)
            actions += settle(item.share)
        }
        return actions
    }

    /// The heartbeat is renewed again: a new life, taking work again.
    mutating func unfence() -> [Action] {
        guard fenced else { return [] }
        fenced = false
        return startWhatFits()
    }

    /// SIGTERM: take no more work; each delivery with an attempt still waiting here goes back
    /// to its queue, whole (the attempts of a batch that started already come back as copies,
    /// which the node's next life drops, and the scheduler places again if they never reported).
    mutating func beginDrain() -> [Action] {
        draining = true
        let items = buffered.values.flatMap { $0 }
        buffered = [:]
        var actions: [Action] = []
        for share in Set(items.map(\.share)).sorted() {
            guard let entry = shares.removeValue(forKey: share) else { continue }
            actions.append(.requeue(entry.delivery))
        }
        return actions
    }

    /// After the drain timeout: stop what still runs; it is reported as interrupted.
    func interruptRunning() -> [Action] {
        running.keys.sorted().map { .stop($0, .interrupt) }
    }

    // MARK: Rules

    /// One attempt of a delivery: dropped, refused, or buffered.
    private mutating func take(_ message: TaskMessage, share: ShareID) -> [Action] {
        if let placedIn = message.nodeStartedAt, placedIn < life - 0.0005 {
            // Placed before this node's last fence (or its previous process): the scheduler has
            // taken it back, or will when it sees the new life; running it now could run it twice.
            seen.insert(message.attemptID)
            return [.dropped(message.attemptID, reason: "it was placed in an earlier life of this node (before its last fence or restart)")]
                + settle(share)
        }
        if seen.contains(message.attemptID) || cancelled.contains(message.attemptID) {
            // A redelivery of an attempt started already, or one the scheduler cancelled.
            return settle(share)
        }
        let problems = message.spec.problems
        guard problems.isEmpty else {
            seen.insert(message.attemptID)
            let reason = problems.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
            return [.refuse(message, reason: "the task message is invalid: \(reason)")] + settle(share)
        }
        if let index = buffered[message.spec.priority]?.firstIndex(where: { $0.message.attemptID == message.attemptID }),
            let old = buffered[message.spec.priority]?[index].share
        {
            // Here again while it waits: redelivered after a reconnect (the old delivery's
            // channel is gone; acking it is refused harmlessly) or published again. It waits on
            // the new delivery; its part of the old one is settled.
            buffered[message.spec.priority]?[index] = Buffered(message: message, share: share)
            return settle(old)
        }
        buffered[message.spec.priority, default: []].append(Buffered(message: message, share: share))
        return []
    }

    /// One attempt of a delivery is settled; the delivery is acked with the last one.
    private mutating func settle(_ share: ShareID) -> [Action] {
        guard var entry = shares[share] else { return [] }
        entry.unsettled -= 1
        guard entry.unsettled <= 0 else {
            shares[share] = entry
            return []
        }
        shares[share] = nil
        return [.ack(entry.delivery)]
    }

    /// Starts buffered attempts, highest class first, while they fit (and, with a uid pool,
    /// while a uid is free). A program not in the allowed commands is refused at its turn.
    private mutating func startWhatFits() -> [Action] {
        guard !fenced && !draining else { return [] }
        var actions: [Action] = []
        for priority in PriorityClass.consumptionOrder {
            while let next = buffered[priority]?.first {
                let spec = next.message.spec
                guard (capacity - used).fits(spec.resources) else { return actions }
                let (available, identity) = spec.kind == .noop ? (true, nil) : users.take()
                guard available else { return actions }
                buffered[priority]?.removeFirst()
                seen.insert(next.message.attemptID)
                if let program = spec.command?.first, !allowedCommands.contains(program) {
                    users.giveBack(identity)
                    actions.append(.refuse(next.message, reason: "\(program) is not in FOG_ALLOWED_COMMANDS on node \(node)"))
                    actions += settle(next.share)
                    continue
                }
                unsettled += 1
                if spec.kind != .noop {
                    used = used + spec.resources
                    running[next.message.attemptID] = Running(message: next.message, identity: identity)
                }
                actions.append(.start(next.message, identity: identity, share: next.share))
            }
        }
        return actions
    }
}

/// The ids of the last `limit` attempts seen, for dropping copies of them.
struct RecentIDs: Sendable {
    let limit: Int
    private var set: Set<UUID> = []
    private var order: [UUID] = []

    init(limit: Int) { self.limit = limit }

    func contains(_ id: UUID) -> Bool { set.contains(id) }

    mutating func insert(_ id: UUID) {
        guard set.insert(id).inserted else { return }
        order.append(id)
        if order.count > limit {
            let old = order.prefix(limit / 2)
            set.subtract(old)
            order.removeFirst(old.count)
        }
    }
}
