/// What a task needs, or what a node has: CPU in millicores, memory and storage in MB.
public struct Resources: Sendable, Codable, Equatable, Hashable {
    public var cpuMillicores: Int
    public var memoryMB: Int
    public var storageMB: Int

    public init(cpuMillicores: Int, memoryMB: Int, storageMB: Int = 0) {
        self.cpuMillicores = cpuMillicores
        self.memoryMB = memoryMB
        self.storageMB = storageMB
    }

    public static let zero = Resources(cpuMillicores: 0, memoryMB: 0, storageMB: 0)
    /// What a task asks for when it says nothing (DESIGN.md §9).
    public static let taskDefault = Resources(cpuMillicores: 100, memoryMB: 64, storageMB: 0)

    /// True when `other` fits inside these resources.
    public func fits(_ other: Resources) -> Bool {
        other.cpuMillicores <= cpuMillicores && other.memoryMB <= memoryMB && other.storageMB <= storageMB
    }

    public static func + (lhs: Resources, rhs: Resources) -> Resources {
        Resources(
            cpuMillicores: lhs.cpuMillicores + rhs.cpuMillicores, memoryMB: lhs.memoryMB + rhs.memoryMB,
            storageMB: lhs.storageMB + rhs.storageMB)
    }

    public static func - (lhs: Resources, rhs: Resources) -> Resources {
        Resources(
            cpuMillicores: lhs.cpuMillicores - rhs.cpuMillicores, memoryMB: lhs.memoryMB - rhs.memoryMB,
            storageMB: lhs.storageMB - rhs.storageMB)
    }

    enum CodingKeys: String, CodingKey {
        case cpuMillicores = "cpu_millicores"
        case memoryMB = "memory_mb"
        case storageMB = "storage_mb"
    }
}
