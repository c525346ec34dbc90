import FogCore
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
        let plan = JoinPlanner.plan(node: Self.c, local: example.local, master: Self.a, masterView: example.masterView,
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

@Suite struct MasterLeaseTests {
    @Test func aFollowerObserves() {
        var lease = MasterLease(ttl: .seconds(9))
        #expect(lease.tick(now: .seconds(100)) == .observe)
        #expect(!lease.isMaster)
    }

    @Test func aMasterRenewsAfterAThirdAndStepsDownWhenTheLeaseLapses() {
        var lease = MasterLease(ttl: .seconds(9))
        lease.held(epoch: 4, at: .seconds(10))
        #expect(lease.epoch == 4)
        #expect(lease.tick(now: .seconds(12)) == .observe)
        #expect(lease.tick(now: .seconds(13)) == .renew)
        lease.renewed(at: .seconds(13))
        #expect(lease.tick(now: .seconds(15)) == .observe)
        // Renewals fail from here on (Redis gone): at 13 + 9 the lease is over.
        #expect(lease.tick(now: .seconds(16)) == .renew)
        #expect(lease.tick(now: .seconds(21.9)) == .renew)
        #expect(lease.tick(now: .seconds(22)) == .stepDown)
        #expect(!lease.isMaster)
        #expect(lease.tick(now: .seconds(23)) == .observe)
    }

    @Test func losingTheKeyMakesAFollower() {
        var lease = MasterLease(ttl: .seconds(5))
        lease.held(epoch: 1, at: .zero)
        lease.lost()
        #expect(!lease.isMaster && lease.epoch == nil)
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
        let queues = [Queue(name: "fog/fog.events", members: ["rabbit@c"]),
                      Queue(name: "fog/fog.node.n1.high", members: ["rabbit@a", "rabbit@b", "rabbit@c"])]
        #expect(QueueReplication.nodesToGrow(queues, running: Self.running) == ["rabbit@a", "rabbit@b"])
    }

    @Test func wholeQueuesNeedNothing() {
        let queues = [Queue(name: "fog/q", members: ["rabbit@c", "rabbit@a", "rabbit@b"])]
        #expect(QueueReplication.nodesToGrow(queues, running: Self.running).isEmpty)
        #expect(QueueReplication.nodesToGrow([], running: Self.running).isEmpty)
    }

    @Test func aStoppedMemberIsNotGrownOnto() {
        // b is down: it is still a member of the queue and comes back to it; nothing to grow.
        let queues = [Queue(name: "fog/q", members: ["rabbit@a", "rabbit@b", "rabbit@c"]),
                      Queue(name: "fog/r", members: ["rabbit@a"])]
        #expect(QueueReplication.nodesToGrow(queues, running: ["rabbit@a", "rabbit@c"]) == ["rabbit@c"])
    }
}
