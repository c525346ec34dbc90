import FogCore
import Foundation
import Testing

@testable import FogNode

/// The fog node's admission, fencing and drain as a value: every rule without a server or a
/// process. Deliveries are plain numbers here.
@Suite struct AdmissionTests {
    typealias Machine = Admission<Int>
    static let node = "edge-1"
    static let life = 1_000.0

    static func machine(
        cpu: Int = 1_000, memory: Int = 1_024, users: TaskUsers = TaskUsers(mode: .unprivileged),
        allowed: Set<String> = ["/bin/true"]
    ) -> Machine {
        Machine(node: node, capacity: Resources(cpuMillicores: cpu, memoryMB: memory), allowedCommands: allowed, life: life, users: users)
    }

    static func attempt(
        _ priority: PriorityClass = .normal, cpu: Int = 500, kind: BuiltinKind? = .sleep, command: [String]? = nil,
        node: String = node, placedIn: Double? = life, id: UUID = UUID()
    ) -> TaskMessage {
        let spec = TaskSpec(
            name: "t", command: command, kind: command == nil ? kind : nil, args: .init(seconds: 1), priority: priority,
            resources: Resources(cpuMillicores: cpu, memoryMB: 64))
        return TaskMessage(taskID: UUID(), attemptID: id, attempt: 1, epoch: 1, node: node, spec: spec, nodeStartedAt: placedIn)
    }

    /// The actions, named for comparison.
    static func names(_ actions: [Machine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .ack(let delivery): "ack \(delivery)"
            case .requeue(let delivery): "requeue \(delivery)"
            case .reject(let delivery, _): "reject \(delivery)"
            case .start(let message, _, _): "start \(message.spec.priority.rawValue) \(message.spec.resources.cpuMillicores)"
            case .refuse(let message, _): "refuse \(message.attemptID == message.attemptID ? "attempt" : "")"
            case .stop(_, let reason): "stop \(reason)"
            case .dropped: "drop"
            }
        }
    }

    static func shares(_ actions: [Machine.Action]) -> [Int] {
        actions.compactMap { if case .start(_, _, let share) = $0 { return share } else { return nil } }
    }

    @Test func anAttemptThatFitsStartsAndItsDeliveryIsAckedWhenItsStartIsConfirmed() {
        var machine = Self.machine()
        let message = Self.attempt()
        let actions = machine.received(7, attempts: [message])
        #expect(Self.names(actions) == ["start normal 500"])
        #expect(machine.running.count == 1 && machine.used.cpuMillicores == 500 && machine.unsettled == 1)
        #expect(Self.names(machine.announced(share: Self.shares(actions)[0])) == ["ack 7"])
        #expect(Self.names(machine.ended(message.attemptID)).isEmpty)
        #expect(machine.used == .zero && machine.running.isEmpty)
        machine.attemptSettled()
        #expect(machine.unsettled == 0)
    }

    @Test func whatDoesNotFitWaitsAndTheHighestClassStartsFirstWhenRoomFrees() {
        var machine = Self.machine(cpu: 1_000)
        let big = Self.attempt(.normal, cpu: 1_000)
        #expect(Self.names(machine.received(1, attempts: [big])) == ["start normal 1000"])
        #expect(machine.received(2, attempts: [Self.attempt(.low, cpu: 300)]).isEmpty)
        #expect(machine.received(3, attempts: [Self.attempt(.critical, cpu: 800)]).isEmpty)
        #expect(machine.waiting == 2)
        // The big one ends: critical first; the low one no longer fits beside it.
        #expect(Self.names(machine.ended(big.attemptID)) == ["start critical 800"])
        #expect(machine.waiting == 1)
    }

    @Test func aBatchIsAckedWhenItsLastAttemptIsSettled() {
        var machine = Self.machine(cpu: 1_000)
        let batch = (0..<4).map { _ in Self.attempt(cpu: 400) }
        let first = machine.received(5, attempts: batch)
        #expect(Self.names(first) == ["start normal 400", "start normal 400"], "two of four fit")
        var acks: [String] = []
        for share in Self.shares(first) { acks += Self.names(machine.announced(share: share)) }
        #expect(acks.isEmpty, "two attempts of the delivery still wait")
        let next = machine.ended(batch[0].attemptID) + machine.ended(batch[1].attemptID)
        #expect(Self.names(next) == ["start normal 400", "start normal 400"])
        for share in Self.shares(next) { acks += Self.names(machine.announced(share: share)) }
        #expect(acks == ["ack 5"])
    }

    @Test func copiesAreDroppedAndSettled() {
        var machine = Self.machine()
        let message = Self.attempt()
        let started = machine.received(1, attempts: [message])
        _ = machine.announced(share: Self.shares(started)[0])
        // A redelivery of an attempt that started already: acked, not run again.
        #expect(Self.names(machine.received(2, attempts: [message])) == ["ack 2"])
        #expect(machine.running.count == 1)
    }

    @Test func aMessageForAnotherNodeIsDeadLetteredWhole() {
        var machine = Self.machine()
        let actions = machine.received(3, attempts: [Self.attempt(), Self.attempt(node: "edge-2")])
        #expect(Self.names(actions) == ["reject 3"])
        #expect(machine.running.isEmpty && machine.shares.isEmpty)
    }

    @Test func anInvalidTaskAndACommandNotAllowedAreRefusedAndSettled() {
        var machine = Self.machine()
        var invalid = Self.attempt()
        invalid.spec.env = ["LD_PRELOAD": "/tmp/x.so"]
        #expect(Self.names(machine.received(1, attempts: [invalid])) == ["refuse attempt", "ack 1"])
        let forbidden = Self.attempt(command: ["/bin/sh", "-c", "id"])
        #expect(Self.names(machine.received(2, attempts: [forbidden])) == ["refuse attempt", "ack 2"])
        let allowed = Self.attempt(command: ["/bin/true"])
        #expect(Self.names(machine.received(3, attempts: [allowed])) == ["start normal 500"])
        #expect(machine.used.cpuMillicores == 500)
    }

    @Test func aNoOpNeverHoldsRoom() {
        var machine = Self.machine(cpu: 100)
        let actions = machine.received(1, attempts: [Self.attempt(cpu: 100, kind: .noop), Self.attempt(cpu: 100, kind: .noop)])
        #expect(Self.names(actions) == ["start normal 100", "start normal 100"])
        #expect(machine.running.isEmpty && machine.used == .zero && machine.unsettled == 2)
    }

    /// A uid pool of one: the second program waits for the first one's uid, even with room.
    @Test func withAUidPoolAnAttemptWaitsForAFreeUid() {
        var machine = Self.machine(users: TaskUsers(mode: .pool(3_900_000_000...3_900_000_000)))
        let first = Self.attempt(cpu: 100)
        let started = machine.received(1, attempts: [first])
        guard case .start(_, let identity, _) = started.first else {
            Issue.record("not started: \(started)")
            return
        }
        #expect(identity?.uid == 3_900_000_000 && identity?.exclusive == true)
        #expect(machine.received(2, attempts: [Self.attempt(cpu: 100)]).isEmpty)
        #expect(Self.names(machine.ended(first.attemptID)) == ["start normal 100"])
    }

    @Test func aFenceStopsWhatRunsDropsWhatWaitsAndStartsANewLife() {
        var machine = Self.machine(cpu: 500)
        let running = Self.attempt(cpu: 500)
        let waiting = Self.attempt(cpu: 500)
        let started = machine.received(1, attempts: [running])
        _ = machine.announced(share: Self.shares(started)[0])
        #expect(machine.received(2, attempts: [waiting]).isEmpty)
        let fenced = machine.fence(now: 2_000)
        #expect(Self.names(fenced) == ["stop fence", "ack 2"], "the waiting one is dropped, its delivery settled")
        #expect(machine.fenced && machine.life == 2_000 && machine.waiting == 0)
        // While fenced nothing starts, even when room frees.
        #expect(machine.ended(running.attemptID).isEmpty)
        #expect(machine.received(3, attempts: [Self.attempt(placedIn: 2_000)]).isEmpty)
        // A message of the earlier life is dropped, even once the fence is lifted: the
        // scheduler places it again when it sees the new life.
        #expect(Self.names(machine.unfence()) == ["start normal 500"])
        #expect(Self.names(machine.received(4, attempts: [Self.attempt(placedIn: Self.life)])) == ["drop", "ack 4"])
        // The dropped waiting attempt, redelivered, is of the earlier life too.
        #expect(Self.names(machine.received(5, attempts: [waiting])) == ["drop", "ack 5"])
    }

    @Test func aFenceAtAClockBehindTheLifeStillMovesTheLifeOn() {
        var machine = Self.machine()
        _ = machine.fence(now: 10)
        #expect(machine.life > Self.life)
    }

    @Test func aCancelStopsARunningAttemptAndDropsAWaitingOneAndALateOne() {
        var machine = Self.machine(cpu: 500)
        let running = Self.attempt(cpu: 500)
        let waiting = Self.attempt(cpu: 500)
        let late = Self.attempt(cpu: 100)
        _ = machine.received(1, attempts: [running])
        _ = machine.received(2, attempts: [waiting])
        #expect(Self.names(machine.cancel(running.attemptID)) == ["stop cancel"])
        #expect(Self.names(machine.cancel(waiting.attemptID)) == ["drop", "ack 2"])
        _ = machine.cancel(late.attemptID)
        #expect(Self.names(machine.received(3, attempts: [late])) == ["ack 3"])
    }

    @Test func aDrainGivesEachWaitingDeliveryBackWholeAndStartsNothing() {
        var machine = Self.machine(cpu: 500)
        let running = Self.attempt(cpu: 500)
        _ = machine.received(1, attempts: [running])
        _ = machine.received(2, attempts: [Self.attempt(cpu: 500), Self.attempt(cpu: 500)])
        _ = machine.received(3, attempts: [Self.attempt(.high, cpu: 500)])
        #expect(Self.names(machine.beginDrain()) == ["requeue 2", "requeue 3"])
        #expect(machine.draining && machine.waiting == 0)
        #expect(machine.ended(running.attemptID).isEmpty, "a draining node starts nothing")
        #expect(Self.names(machine.interruptRunning()).isEmpty)
    }

    @Test func aRedeliveryOfAWaitingAttemptMovesItToTheNewDelivery() {
        var machine = Self.machine(cpu: 500)
        _ = machine.received(1, attempts: [Self.attempt(cpu: 500)])
        let waiting = Self.attempt(cpu: 500)
        #expect(machine.received(2, attempts: [waiting]).isEmpty)
        #expect(Self.names(machine.received(3, attempts: [waiting])) == ["ack 2"], "the old delivery is settled")
        #expect(machine.waiting == 1)
    }

    @Test func loadCountsWhatRunsAndWaits() {
        var machine = Self.machine(cpu: 500)
        _ = machine.received(1, attempts: [Self.attempt(cpu: 400), Self.attempt(cpu: 400)])
        let load = machine.load(at: 5)
        #expect(load.running == 1 && load.queued == 1 && load.used.cpuMillicores == 400 && !load.draining)
    }
}
