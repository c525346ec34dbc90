/// A task's priority class. Node queues are split by class and consumed highest first.
public enum PriorityClass: String, Sendable, CaseIterable, Codable, Comparable {
    case critical, high, normal, low

    /// Highest first: `critical` < `high` < ... in consumption order.
    public static let consumptionOrder: [PriorityClass] = [.critical, .high, .normal, .low]

    /// 0 for critical up to 3 for low.
    public var rank: Int {
        switch self {
        case .critical: 0
        case .high: 1
        case .normal: 2
        case .low: 3
        }
    }

    public static func < (lhs: PriorityClass, rhs: PriorityClass) -> Bool { lhs.rank < rhs.rank }
}
