import AMQPClient
import FogCore
import Foundation
import PostgresClient
import RedisClient

/// Connects to each server a service needs and says, per server, whether it answered and
/// how fast, or why not. `scheduler check`, `fog-node check` and `clusterctl check` print it.
public enum ConnectivityCheck {
    public struct Line: Sendable {
        public let service: ServiceEnvironment.Service
        public let ok: Bool
        public let detail: String

        public var rendered: String {
            let name = switch service {
            case .broker: "RabbitMQ  "
            case .redis: "Redis     "
            case .database: "PostgreSQL"
            }
            return "\(ok ? "✓" : "✗") \(name) \(detail)"
        }
    }

    /// Checks every service in `services`; never throws, so one failure hides no other.
    public static func run(_ environment: ServiceEnvironment, services: [ServiceEnvironment.Service]) async -> [Line] {
        var lines: [Line] = []
        for service in services {
            let started = ContinuousClock.now
            do {
                let detail = try await probe(service, environment)
                let elapsed = ContinuousClock.now - started
                lines.append(Line(service: service, ok: true, detail: "\(detail) (\(Int(elapsed.seconds * 1000)) ms)"))
            } catch {
                lines.append(Line(service: service, ok: false, detail: "\(error)"))
            }
        }
        return lines
    }

    private static func probe(_ service: ServiceEnvironment.Service, _ environment: ServiceEnvironment) async throws -> String {
        switch service {
        case .broker:
            let configuration = try AMQPConfiguration(urls: environment.brokerURLs ?? "", connectionName: "check")
            let connection = try await AMQPConnection.connect(configuration)
            defer { connection.close() }
            return "connected to \(try await connection.currentBroker())"
        case .redis:
            let connection = try await RedisConnection.connect(RedisConfiguration(url: environment.redisURL ?? ""))
            defer { connection.close() }
            try await connection.ping()
            return "PING answered at \(connection.configuration.address)"
        case .database:
            let connection = try await PostgresConnection.connect(PostgresConfiguration(url: environment.databaseURL ?? ""))
            defer { connection.close() }
            let version = try await connection.query("SHOW server_version").scalar(String.self) ?? "?"
            return "PostgreSQL \(version)"
        }
    }
}
