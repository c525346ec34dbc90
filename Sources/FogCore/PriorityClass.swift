/// A task's priority class. Node queues are split by class and consumed highest first.
public enum PriorityClass: String, Sendable, CaseIterable, Codable, Comparable {
    case critical, high, normal, low

    /// Highest first: `critical` < `high` < ... in consumption order.
    public static let consumptionOrder: [PriorityClass] = [.critical, .high, .normal, .low]

    /// 0 for critical up to 3 for low.
    public var rank: Int { Self.consumptionOrder.firstIndex(of: self)! }

    public static func < (lhs: PriorityClass, rhs: PriorityClass) -> Bool { lhs.rank < rhs.rank }
}
