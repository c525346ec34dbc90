import FogCore
import TestSupport
import Testing

@Suite struct JoinPlannerTests {
    static let a = "rabbit@a", b = "rabbit@b", c = "rabbit@c"
    static let whole = RabbitClusterStatus(nodes: [a, b, c], runningNodes: [a, b, c])
    static let withoutC = RabbitClusterStatus(nodes: [a, b], runningNodes: [a, b])
    static let freshC = RabbitClusterStatus(nodes: [c], runningNodes: [c])
    static let oldC = RabbitClusterStatus(nodes: [a, b, c], runningNodes: [c])

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let local: RabbitClusterStatus
        let masterView: RabbitClusterStatus
        let unreplicated: Int
        let expected: JoinPlanner.Plan
        var testDescription: String { name }
    }

    @Test(arguments: [
        Case(name: "a member", local: whole, masterView: whole, unreplicated: 0, expected: .alreadyMember),
        Case(name: "a fresh node", local: freshC, masterView: withoutC, unreplicated: 0, expected: .join),
        Case(name: "a wiped node the cluster still lists", local: freshC, masterView: whole, unreplicated: 0, expected: .forgetThenJoin),
        Case(name: "a node forgotten while down", local: oldC, masterView: withoutC, unreplicated: 0, expected: .resetThenRejoin),
    ])
    func plansTheLeastDestructiveWayIn(_ example: Case) {
        let plan = JoinPlanner.plan(
            node: Self.c, local: example.local, master: Self.a, masterView: example.masterView,
            unreplicatedMessages: example.unreplicated)
        #expect(plan == example.expected)
    }

    @Test(arguments: [
        (freshC, withoutC), (freshC, whole), (oldC, withoutC),
    ])
    func neverResetsANodeHoldingTheOnlyCopyOfMessages(local: RabbitClusterStatus, masterView: RabbitClusterStatus) {
        let plan = JoinPlanner.plan(node: Self.c, local: local, master: Self.a, masterView: masterView, unreplicatedMessages: 12)
        guard case .refuse(let reason) = plan else {
            Issue.record("expected a refusal, got \(plan)")
            return
        }
        #expect(reason.contains("12 messages"))
    }

    @Test func aNodeInAnotherClusterIsLeftAlone() {
        let elsewhere = RabbitClusterStatus(nodes: [Self.c, "rabbit@x"], runningNodes: [Self.c])
        let plan = JoinPlanner.plan(node: Self.c, local: elsewhere, master: Self.a, masterView: Self.whole, unreplicatedMessages: 0)
        #expect({ if case .refuse = plan { true } else { false } }())
    }

    @Test func onlyANodeWhoseClusterHoldsEveryLiveMemberMayLead() {
        #expect(JoinPlanner.mayLead(node: Self.b, local: Self.whole, liveMembers: [Self.a, Self.b, Self.c]))
        #expect(JoinPlanner.mayLead(node: Self.c, local: Self.freshC, liveMembers: []))
        // A wiped node must not become the master the others would have to reset to join.
        #expect(!JoinPlanner.mayLead(node: Self.c, local: Self.freshC, liveMembers: [Self.a, Self.b]))
        // Nor may a node whose RabbitMQ application is stopped.
        let stopped = RabbitClusterStatus(nodes: [Self.a, Self.b, Self.c], runningNodes: [Self.a, Self.b])
        #expect(!JoinPlanner.mayLead(node: Self.c, local: stopped, liveMembers: [Self.a]))
    }
}

@Suite struct LeaseStateTests {
    typealias Instant = ManualClock.Instant
    static func t(_ seconds: Double) -> Instant { Instant(offset: .milliseconds(Int64(seconds * 1000))) }

    @Test func aFollowerClaims() {
        var lease = LeaseState<Instant>(ttl: .seconds(9))
        #expect(lease.next(at: Self.t(100)) == .claim)
        #expect(!lease.isHolding && lease.token(at: Self.t(100)) == nil)
    }

    @Test func aHolderRenewsAfterAThirdAndStepsDownWhenTheLeaseLapses() {
        var lease = LeaseState<Instant>(ttl: .seconds(9))
        lease.claimed(token: 4, sentAt: Self.t(10))
        #expect(lease.token(at: Self.t(10)) == 4)
        #expect(lease.next(at: Self.t(12)) == .keep)
        #expect(lease.next(at: Self.t(13)) == .renew)
        lease.renewed(sentAt: Self.t(13))
        #expect(lease.next(at: Self.t(15)) == .keep)
        // Renewals fail from here on (Redis gone): at 13 + 9 the lease is over.
        #expect(lease.next(at: Self.t(16)) == .renew)
        #expect(lease.next(at: Self.t(21.9)) == .renew)
        #expect(lease.token(at: Self.t(21.9)) == 4)
        #expect(lease.next(at: Self.t(22)) == .stepDown)
        #expect(!lease.isHolding && lease.token(at: Self.t(22)) == nil)
        #expect(lease.next(at: Self.t(23)) == .claim)
    }

    /// The lease runs from when the claim was sent, not from when its answer came: the store
    /// ran it no earlier, so nobody else can hold the key before then.
    @Test func aSlowClaimCountsFromItsRequest() {
        var lease = LeaseState<Instant>(ttl: .seconds(6))
        lease.claimed(token: 1, sentAt: Self.t(0))
        #expect(lease.token(at: Self.t(5.9)) == 1)
        #expect(lease.token(at: Self.t(6)) == nil)
    }

    /// The holder is stuck in a call (a renewal that hangs, a long transaction): without any
    /// further event, the lease reads as lapsed from the instant it expires.
    @Test func aLeaseLapsesMidCall() {
        var lease = LeaseState<Instant>(ttl: .seconds(5))
        lease.claimed(token: 7, sentAt: Self.t(0))
        #expect(lease.next(at: Self.t(2)) == .renew)
        // The renewal sent at 2 has not answered yet.
        #expect(lease.token(at: Self.t(4.999)) == 7)
        #expect(lease.token(at: Self.t(5)) == nil)
        #expect(lease.isHolding, "still in its term until the next turn steps it down")
    }

    /// A renewal that blocks past the whole TTL and then answers yes: the key was ours when
    /// Redis ran it, at some unknown instant after it was sent; counted from the send it has
    /// lapsed too, so the holder steps down instead of trusting it.
    @Test func aRenewalThatBlocksPastTheTTLDoesNotRevive() {
        var lease = LeaseState<Instant>(ttl: .seconds(6))
        lease.claimed(token: 3, sentAt: Self.t(0))
        #expect(lease.next(at: Self.t(2)) == .renew)
        // Sent at 2, answered at 9: the lease runs to 2 + 6 = 8 at best.
        lease.renewed(sentAt: Self.t(2))
        #expect(lease.token(at: Self.t(9)) == nil)
        #expect(lease.next(at: Self.t(9)) == .stepDown)
        #expect(lease.next(at: Self.t(9.1)) == .claim)
    }

    /// One that blocks for less than what is left of the lease renews it from when it was sent.
    @Test func aSlowRenewalWithinTheLeaseExtendsItFromItsSend() {
        var lease = LeaseState<Instant>(ttl: .seconds(6))
        lease.claimed(token: 3, sentAt: Self.t(0))
        #expect(lease.next(at: Self.t(2)) == .renew)
        lease.renewed(sentAt: Self.t(2))  // answered at 5
        #expect(lease.token(at: Self.t(7.9)) == 3)
        #expect(lease.token(at: Self.t(8)) == nil)
        #expect(lease.next(at: Self.t(3.9)) == .keep)
        #expect(lease.next(at: Self.t(4)) == .renew, "a third of the renewed lease is gone at 2 + 2")
    }

    /// An answer that arrives after a later one cannot shorten the lease, and one for a term
    /// that ended meanwhile (resigned, stepped down) does not bring it back.
    @Test func lateAnswersNeitherShortenNorRevive() {
        var lease = LeaseState<Instant>(ttl: .seconds(6))
        lease.claimed(token: 3, sentAt: Self.t(0))
        lease.renewed(sentAt: Self.t(4))
        lease.renewed(sentAt: Self.t(2))
        #expect(lease.token(at: Self.t(9.9)) == 3)
        #expect(lease.lost() == 3)
        lease.renewed(sentAt: Self.t(10))
        #expect(!lease.isHolding && lease.token(at: Self.t(10)) == nil)
        #expect(lease.lost() == nil)
    }
}

@Suite struct RabbitClusterStatusTests {
    @Test func readsRabbitmqctlJSON() throws {
        let json = """
            {"disk_nodes":["rmq1@localhost","rmq2@localhost"],"ram_nodes":["rmq3@localhost"],
             "running_nodes":["rmq2@localhost","rmq1@localhost"],"partitions":{"rmq1@localhost":[]}}
            """
        let status = try RabbitClusterStatus(json: json)
        #expect(status.nodes == ["rmq1@localhost", "rmq2@localhost", "rmq3@localhost"])
        #expect(status.runningNodes == ["rmq1@localhost", "rmq2@localhost"])
        #expect(status.partitionedNodes.isEmpty)
        #expect(!status.isStandalone("rmq1@localhost"))
    }

    @Test func refusesOutputThatIsNotAStatus() {
        #expect(throws: RabbitClusterStatus.ParseError.self) { try RabbitClusterStatus(json: "Error: node down") }
        #expect(throws: RabbitClusterStatus.ParseError.self) { try RabbitClusterStatus(json: "{}") }
    }
}

@Suite struct QueueReplicationTests {
    typealias Queue = QueueReplication.Queue
    static let running: Set<String> = ["rabbit@a", "rabbit@b", "rabbit@c"]

    @Test func queuesDeclaredOnALoneNodeAreGrownOntoTheOthers() {
        // As seen on Swarm: fog nodes declared their queues before the cluster had formed.
        let queues = [
            Queue(name: "fog/fog.events", members: ["rabbit@c"]),
            Queue(name: "fog/fog.node.n1.high", members: ["rabbit@a", "rabbit@b", "rabbit@c"]),
        ]
        #expect(QueueReplication.nodesToGrow(queues, running: Self.running) == ["rabbit@a", "rabbit@b"])
    }

    @Test func wholeQueuesNeedNothing() {
        let queues = [Queue(name: "fog/q", members: ["rabbit@c", "rabbit@a", "rabbit@b"])]
        #expect(QueueReplication.nodesToGrow(queues, running: Self.running).isEmpty)
        #expect(QueueReplication.nodesToGrow([], running: Self.running).isEmpty)
    }

    @Test func aStoppedMemberIsNotGrownOnto() {
        // b is down: it is still a member of the queue and comes back to it; nothing to grow.
        let queues = [
            Queue(name: "fog/q", members: ["rabbit@a", "rabbit@b", "rabbit@c"]),
            Queue(name: "fog/r", members: ["rabbit@a"]),
        ]
        #expect(QueueReplication.nodesToGrow(queues, running: ["rabbit@a", "rabbit@c"]) == ["rabbit@c"])
    }
}
