import Testing

@testable import AMQPClient

/// The publisher-confirm bookkeeping, without a broker: tickets are plain numbers.
@Suite struct ConfirmLedgerTests {
    private func makeLedger(publishing count: Int, routingKey: String = "fog.node.a") -> ConfirmLedger<Int> {
        var ledger = ConfirmLedger<Int>()
        for index in 0..<count { ledger.published(exchange: "fog.tasks", routingKey: routingKey, body: [UInt8(index)], ticket: index) }
        return ledger
    }

    private func tickets(_ settled: [ConfirmLedger<Int>.Settled]) -> [Int] { settled.map(\.ticket) }

    @Test func eachPublishGetsTheNextTagFromOne() {
        var ledger = ConfirmLedger<Int>()
        #expect(ledger.published(exchange: "", routingKey: "q", body: [], ticket: 7) == 1)
        #expect(ledger.published(exchange: "", routingKey: "q", body: [], ticket: 8) == 2)
        #expect(ledger.unconfirmed == 2)
    }

    @Test func singleConfirmsSettleTheirOwnTicketInAnyOrder() {
        var ledger = makeLedger(publishing: 3)
        #expect(tickets(ledger.confirmed(upTo: 2, multiple: false, ack: true)) == [1])
        #expect(tickets(ledger.confirmed(upTo: 1, multiple: false, ack: true)) == [0])
        #expect(ledger.unconfirmed == 1)
        // A confirm that comes twice settles nothing the second time.
        #expect(ledger.confirmed(upTo: 1, multiple: false, ack: true).isEmpty)
    }

    @Test func aMultipleConfirmSettlesEveryTagUpToItsOwnAndNoLater() {
        var ledger = makeLedger(publishing: 5)
        _ = ledger.confirmed(upTo: 2, multiple: false, ack: true)
        let settled = ledger.confirmed(upTo: 4, multiple: true, ack: true)
        #expect(tickets(settled) == [0, 2, 3])
        #expect(settled.allSatisfy { $0.outcome == .ack })
        #expect(ledger.unconfirmed == 1)
        #expect(tickets(ledger.confirmed(upTo: 5, multiple: true, ack: true)) == [4])
    }

    @Test func aNackSettlesAsNack() {
        var ledger = makeLedger(publishing: 2)
        #expect(ledger.confirmed(upTo: 2, multiple: true, ack: false).map(\.outcome) == [.nack, .nack])
    }

    @Test func aReturnBeforeTheConfirmMakesItReturnedAndMatchesTheOldestSameMessage() {
        var ledger = ConfirmLedger<Int>()
        ledger.published(exchange: "fog.tasks", routingKey: "fog.node.gone", body: [1], ticket: 0)
        ledger.published(exchange: "fog.tasks", routingKey: "fog.node.a", body: [1], ticket: 1)
        ledger.published(exchange: "fog.tasks", routingKey: "fog.node.gone", body: [1], ticket: 2)
        // Two returns of the same message: the oldest first, then the next one.
        ledger.returned(code: 312, text: "NO_ROUTE", exchange: "fog.tasks", routingKey: "fog.node.gone", body: [1])
        ledger.returned(code: 312, text: "NO_ROUTE", exchange: "fog.tasks", routingKey: "fog.node.gone", body: [1])
        // A return that matches nothing unconfirmed is ignored.
        ledger.returned(code: 312, text: "NO_ROUTE", exchange: "fog.tasks", routingKey: "fog.node.other", body: [1])
        let settled = ledger.confirmed(upTo: 3, multiple: true, ack: true)
        #expect(
            settled.map(\.outcome) == [
                .returned(replyCode: 312, replyText: "NO_ROUTE"), .ack, .returned(replyCode: 312, replyText: "NO_ROUTE"),
            ])
    }

    @Test func aConfirmOfATagNeverPublishedSettlesNothingElse() {
        var ledger = makeLedger(publishing: 2)
        #expect(ledger.confirmed(upTo: 9, multiple: false, ack: true).isEmpty)
        #expect(ledger.confirmed(upTo: 0, multiple: false, ack: true).isEmpty)
        #expect(ledger.confirmed(upTo: 0, multiple: true, ack: true).isEmpty)
        #expect(ledger.unconfirmed == 2)
    }

    @Test(.timeLimit(.minutes(1))) func aMultipleConfirmUpToAHugeTagSettlesOnlyWhatWasPublished() {
        // A broker that sends `multiple` up to UInt64.max must not make the loop walk 2^64 tags.
        var ledger = makeLedger(publishing: 3)
        #expect(tickets(ledger.confirmed(upTo: .max, multiple: true, ack: true)) == [0, 1, 2])
        #expect(ledger.unconfirmed == 0)
        #expect(ledger.published(exchange: "", routingKey: "q", body: [], ticket: 3) == 4)
    }

    @Test func aResetGivesBackTheUnconfirmedInPublishOrderAndCountsFromOneAgain() {
        var ledger = makeLedger(publishing: 4)
        _ = ledger.confirmed(upTo: 2, multiple: false, ack: true)
        ledger.returned(code: 312, text: "NO_ROUTE", exchange: "fog.tasks", routingKey: "fog.node.a", body: [3])
        #expect(ledger.reset() == [0, 2, 3])
        #expect(ledger.unconfirmed == 0)
        #expect(ledger.published(exchange: "", routingKey: "q", body: [], ticket: 9) == 1)
        // The return of before the reset does not follow the new message with tag 1.
        #expect(ledger.confirmed(upTo: 1, multiple: false, ack: true).map(\.outcome) == [.ack])
    }
}
