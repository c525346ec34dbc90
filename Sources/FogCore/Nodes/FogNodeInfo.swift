import Foundation

/// A fog node's registration, as it lives in the `fog:node:{id}` hash: what it has, where it
/// is, what it costs in energy.
public struct FogNodeInfo: Sendable, Equatable, Codable {
    public struct Power: Sendable, Equatable, Codable {
        public var idleWatts: Double
        public var maxWatts: Double
        /// Battery charge in percent; nil for mains power.
        public var batteryPercent: Double?

        public init(idleWatts: Double = 10, maxWatts: Double = 50, batteryPercent: Double? = nil) {
            self.idleWatts = idleWatts
            self.maxWatts = maxWatts
            self.batteryPercent = batteryPercent
        }

        enum CodingKeys: String, CodingKey {
            case idleWatts = "idle_w"
            case maxWatts = "max_w"
            case batteryPercent = "battery_pct"
        }
    }

    public var id: String
    public var capacity: Resources
    public var zone: String
    public var labels: [String: String]
    /// Network latency from each zone to this node, in milliseconds.
    public var latencyMS: [String: Double]
    public var power: Power
    /// How fast it runs work relative to a reference node (1.0): a task expected to take 10 s
    /// takes 10 / speed seconds here.
    public var speed: Double
    public var version: String
    /// Seconds since 1970 when this node process started.
    public var startedAt: Double

    public init(
        id: String, capacity: Resources, zone: String, labels: [String: String] = [:],
        latencyMS: [String: Double] = [:], power: Power = .init(), speed: Double = 1, version: String = "",
        startedAt: Double
    ) {
        self.id = id
        self.capacity = capacity
        self.zone = zone
        self.labels = labels
        self.latencyMS = latencyMS
        self.power = power
        self.speed = speed
        self.version = version
        self.startedAt = startedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, capacity, zone, labels, power, speed, version
        case latencyMS = "latency_ms"
        case startedAt = "started_at"
    }

    /// The latency from `zone` to this node: 0 within its own zone, the declared figure,
    /// or nil when the node does not know that zone.
    public func latency(from zone: String) -> Double? {
        zone == self.zone ? (latencyMS[zone] ?? 0) : latencyMS[zone]
    }

    /// The hash fields, flat strings as Redis keeps them.
    public var hashFields: [String: String] {
        func json<T: Encodable>(_ value: T) -> String { String(decoding: WireFormat.encode(value), as: UTF8.self) }
        var fields = [
            "cpu_millicores": String(capacity.cpuMillicores), "memory_mb": String(capacity.memoryMB),
            "storage_mb": String(capacity.storageMB), "zone": zone, "labels": json(labels),
            "latency_ms": json(latencyMS), "power_idle_w": String(power.idleWatts), "power_max_w": String(power.maxWatts),
            "speed": String(speed), "version": version, "started_at": String(startedAt),
        ]
        if let battery = power.batteryPercent { fields["battery_pct"] = String(battery) }
        return fields
    }

    /// The ranges a registration's fields must fall in (the fog node's own settings keep them):
    /// a value from Redis outside them is refused, never converted with a trap.
    public enum Limits {
        public static let cpuMillicores = 1...10_000_000
        public static let memoryMB = 1...100_000_000
        public static let storageMB = 0...1_000_000_000
        public static let watts = 0.0...1_000_000.0
        public static let batteryPercent = 0.0...100.0
        public static let speed = 0.001...1_000.0
        public static let latencyMS = 0.0...3_600_000.0
        /// Seconds since 1970, up to the year 5138.
        public static let startedAt = 0.0...100_000_000_000.0
        public static let maxLabels = 64
        public static let maxTextBytes = 200
    }

    /// Reads a registration hash. A missing or malformed field is named in the error, with
    /// the node: `fog:node:<id> field <name>: <why>`.
    public init(id: String, hashFields f: [String: String]) throws(WireFormat.Unreadable) {
        func invalid(_ key: String, _ why: String) -> WireFormat.Unreadable {
            WireFormat.Unreadable("fog:node:\(id.prefix(80)) field \(key): \(why)", field: key)
        }
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(WireFormat.Unreadable) -> Int {
            guard let text = f[key], let value = Int(text), range.contains(value) else {
                throw invalid(
                    key,
                    "\(f[key].map { "'\($0.prefix(40))'" } ?? "missing"): expected an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        func number(_ key: String, _ range: ClosedRange<Double>) throws(WireFormat.Unreadable) -> Double {
            guard let text = f[key], let value = Double(text), range.contains(value) else {
                throw invalid(
                    key,
                    "\(f[key].map { "'\($0.prefix(40))'" } ?? "missing"): expected a number in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        func text(_ value: String, _ key: String) throws(WireFormat.Unreadable) -> String {
            guard value.utf8.count <= Limits.maxTextBytes, !value.utf8.contains(0) else {
                throw invalid(key, "longer than \(Limits.maxTextBytes) bytes or holds NUL")
            }
            return value
        }
        func object<T: Decodable>(_ key: String, _ type: T.Type) throws(WireFormat.Unreadable) -> T {
            guard let text = f[key], let value = try? JSONDecoder().decode(T.self, from: Data(text.utf8)) else {
                throw invalid(key, "missing or not a JSON object of the right kind")
            }
            return value
        }
        guard NodeID(rawValue: id) != nil else { throw invalid("id", "not 1-64 letters, digits, '-' or '_'") }
        self.id = id
        capacity = Resources(
            cpuMillicores: try integer("cpu_millicores", Limits.cpuMillicores),
            memoryMB: try integer("memory_mb", Limits.memoryMB), storageMB: try integer("storage_mb", Limits.storageMB))
        zone = try text(f["zone"] ?? "", "zone")
        labels = try object("labels", [String: String].self)
        guard labels.count <= Limits.maxLabels else { throw invalid("labels", "more than \(Limits.maxLabels) labels") }
        for (key, value) in labels {
            _ = try text(key, "labels")
            _ = try text(value, "labels")
        }
        latencyMS = try object("latency_ms", [String: Double].self)
        guard latencyMS.count <= Limits.maxLabels else { throw invalid("latency_ms", "more than \(Limits.maxLabels) zones") }
        for (zone, latency) in latencyMS {
            _ = try text(zone, "latency_ms")
            guard Limits.latencyMS.contains(latency) else {
                throw invalid("latency_ms", "\(zone.prefix(40)): expected milliseconds in 0...3600000")
            }
        }
        power = Power(
            idleWatts: try number("power_idle_w", Limits.watts), maxWatts: try number("power_max_w", Limits.watts),
            batteryPercent: f["battery_pct"] == nil ? nil : try number("battery_pct", Limits.batteryPercent))
        // Nodes registered before speed existed are reference nodes.
        speed = f["speed"] == nil ? 1 : try number("speed", Limits.speed)
        version = try text(f["version"] ?? "", "version")
        startedAt = f["started_at"] == nil ? 0 : try number("started_at", Limits.startedAt)
    }
}

/// A fog node's heartbeat value: how loaded it is right now.
public struct NodeLoad: Sendable, Equatable, Codable {
    public var v: Int = WireFormat.version
    /// What running attempts hold.
    public var used: Resources
    public var running: Int
    /// Messages waiting in its queues, as it last saw them.
    public var queued: Int
    /// Seconds since 1970 when it was written.
    public var at: Double
    /// Set while the node drains (SIGTERM): it takes no new work.
    public var draining: Bool

    public init(used: Resources, running: Int, queued: Int = 0, at: Double, draining: Bool = false) {
        self.used = used
        self.running = running
        self.queued = queued
        self.at = at
        self.draining = draining
    }

    /// Why this heartbeat cannot be taken at its word (a negative or absurd count, a time that
    /// is not one), or nil. Placement reads `queued` and the API the rest.
    public var problem: String? {
        let counts = 0...10_000_000
        guard counts.contains(running), counts.contains(queued) else { return "running and queued must be in 0...10000000" }
        guard [used.cpuMillicores, used.memoryMB, used.storageMB].allSatisfy({ (0...1_000_000_000).contains($0) }) else {
            return "used resources must be in 0...1000000000"
        }
        guard FogNodeInfo.Limits.startedAt.contains(at) else { return "at must be seconds since 1970" }
        return nil
    }
}
