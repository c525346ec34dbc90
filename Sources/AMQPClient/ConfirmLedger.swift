/// The bookkeeping of publisher confirms on one channel, as a value: which delivery tag each
/// published message got, which of them the broker has confirmed (`basic.ack`/`basic.nack`,
/// one tag or every tag up to it), which came back unrouted (`basic.return`, which names no
/// tag). One `mutating func` per event returns the tickets it settles; the event loop settles
/// them. No I/O, so every case is tested without a broker.
///
/// What the broker sends is not trusted to be sane: a confirm of a tag never published, or a
/// `multiple` confirm up to a huge tag, settles only what was published (never a loop over
/// tags that do not exist), and a return that matches nothing is ignored.
///
/// `Ticket` says whom to tell (the event loop: a publish batch and an index in it).
struct ConfirmLedger<Ticket> {
    struct Settled {
        let ticket: Ticket
        let outcome: PublishOutcome
    }

    private struct Pending {
        let ticket: Ticket
        let exchange: String
        let routingKey: String
        let body: [UInt8]
        var returned: (code: Int, text: String)?
    }

    /// The tag the next publish gets: the broker counts from 1 on each channel put in confirm mode.
    private(set) var nextTag: UInt64 = 1
    /// No unconfirmed tag is below this one.
    private var oldestTag: UInt64 = 1
    private var pending: [UInt64: Pending] = [:]

    init() {}

    /// How many publishes wait for their confirm.
    var unconfirmed: Int { pending.count }

    /// A message was handed to the broker; returns its tag.
    @discardableResult
    mutating func published(exchange: String, routingKey: String, body: [UInt8], ticket: Ticket) -> UInt64 {
        let tag = nextTag
        pending[tag] = Pending(ticket: ticket, exchange: exchange, routingKey: routingKey, body: body)
        nextTag += 1
        return tag
    }

    /// `basic.ack` (`ack`) or `basic.nack` for `tag`, or with `multiple` for every tag up to it.
    /// A message returned before its confirm settles as `.returned`.
    mutating func confirmed(upTo tag: UInt64, multiple: Bool, ack: Bool) -> [Settled] {
        // Only tags that were published: the last one is nextTag - 1 (none when nextTag is 1).
        let last = min(tag, nextTag - 1)
        let first = multiple ? oldestTag : tag
        guard first <= last else { return [] }
        var settled: [Settled] = []
        for current in first...last {
            guard let entry = pending.removeValue(forKey: current) else { continue }
            let outcome: PublishOutcome =
                entry.returned.map { .returned(replyCode: $0.code, replyText: $0.text) }
                ?? (ack ? .ack : .nack)
            settled.append(Settled(ticket: entry.ticket, outcome: outcome))
        }
        while oldestTag < nextTag && pending[oldestTag] == nil { oldestTag += 1 }
        return settled
    }

    /// `basic.return` names no tag; it arrives before the confirm of the message it returns,
    /// in publish order, so it belongs to the oldest unconfirmed message with the same
    /// exchange, routing key and body that has not been returned yet.
    mutating func returned(code: Int, text: String, exchange: String, routingKey: String, body: [UInt8]) {
        guard oldestTag < nextTag else { return }
        for tag in oldestTag..<nextTag {
            guard var entry = pending[tag], entry.returned == nil,
                entry.exchange == exchange, entry.routingKey == routingKey, entry.body == body
            else { continue }
            entry.returned = (code, text)
            pending[tag] = entry
            return
        }
    }

    /// The channel is gone (connection lost, or the broker closed it): no confirm will come for
    /// what is unconfirmed, and a channel opened again counts its tags from 1. Returns the
    /// tickets that must fail, in publish order.
    mutating func reset() -> [Ticket] {
        let lost = pending.sorted { $0.key < $1.key }.map(\.value.ticket)
        self = ConfirmLedger()
        return lost
    }
}
