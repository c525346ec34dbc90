import FogCore
import Foundation

/// Connects to each server a service needs and says, per server, whether it answered and
/// how fast, or why not. `scheduler check`, `fog-node check` and `clusterctl check` print it.
/// Each executable brings the probes of the clients it links (`AMQPConnection.probe`,
/// `RedisConnection.probe`, `PostgresConnection.probe`), so that a fog node's binary never
/// loads libpq, nor clusterctl's librabbitmq, for the sake of a check.
public enum ConnectivityCheck {
    /// Reaches one server with the settings, and describes what answered.
    public typealias Probe = @Sendable (ServiceEnvironment) async throws -> String

    public struct Line: Sendable {
        public let service: ServiceEnvironment.Service
        public let ok: Bool
        public let detail: String

        public var rendered: String {
            let name =
                switch service {
                case .broker: "RabbitMQ  "
                case .redis: "Redis     "
                case .database: "PostgreSQL"
                }
            return "\(ok ? "✓" : "✗") \(name) \(detail)"
        }
    }

    /// Runs every probe, in order; never throws, so one failure hides no other.
    public static func run(_ environment: ServiceEnvironment, probes: [(ServiceEnvironment.Service, Probe)]) async -> [Line] {
        var lines: [Line] = []
        for (service, probe) in probes {
            let started = ContinuousClock.now
            do {
                let detail = try await probe(environment)
                let (seconds, attoseconds) = (ContinuousClock.now - started).components
                let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
                lines.append(Line(service: service, ok: true, detail: "\(detail) (\(milliseconds) ms)"))
            } catch {
                lines.append(Line(service: service, ok: false, detail: "\(error)"))
            }
        }
        return lines
    }
}
