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
            case idleWatts = "idle_w", maxWatts = "max_w", batteryPercent = "battery_pct"
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

    public init(id: String, capacity: Resources, zone: String, labels: [String: String] = [:],
                latencyMS: [String: Double] = [:], power: Power = .init(), speed: Double = 1, version: String = "",
                startedAt: Double) {
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

    /// Reads a registration hash; a missing or malformed field is named in the error.
    public init(id: String, hashFields f: [String: String]) throws(WireFormat.Unreadable) {
        func number(_ key: String) throws(WireFormat.Unreadable) -> Double {
            guard let text = f[key], let value = Double(text), value.isFinite, value >= 0 else {
                throw WireFormat.Unreadable("fog:node:\(id) field \(key) is missing or not a non-negative number")
            }
            return value
        }
        func object<T: Decodable>(_ key: String, _ type: T.Type) throws(WireFormat.Unreadable) -> T {
            guard let text = f[key], let value = try? JSONDecoder().decode(T.self, from: Data(text.utf8)) else {
                throw WireFormat.Unreadable("fog:node:\(id) field \(key) is missing or not a JSON object")
            }
            return value
        }
        self.id = id
        capacity = Resources(cpuMillicores: Int(try number("cpu_millicores")), memoryMB: Int(try number("memory_mb")),
                             storageMB: Int(try number("storage_mb")))
        zone = f["zone"] ?? ""
        labels = try object("labels", [String: String].self)
        latencyMS = try object("latency_ms", [String: Double].self)
        power = Power(idleWatts: try number("power_idle_w"), maxWatts: try number("power_max_w"),
                      batteryPercent: f["battery_pct"].flatMap(Double.init))
        // Nodes registered before speed existed are reference nodes.
        speed = f["speed"] == nil ? 1 : try number("speed")
        guard speed > 0 else { throw WireFormat.Unreadable("fog:node:\(id) field speed must be more than 0") }
        version = f["version"] ?? ""
        startedAt = (try? number("started_at")) ?? 0
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
}
