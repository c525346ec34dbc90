import FogCore
import Foundation
import Logging
import RedisClient
import Synchronization

/// Reads the fog nodes from Redis: who is registered (`fog:nodes`), what each has
/// (`fog:node:{id}`), and who is alive (a `fog:node:{id}:heartbeat` key that has not expired).
/// A registration that cannot be read is reported, not fatal.
public final class NodeDirectory: Sendable {
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var info: FogNodeInfo?
        public var load: NodeLoad?
        public var alive: Bool
        public var problem: String?
    }

    let redis: RedisConnection
    private let lastFailure = Mutex<ContinuousClock.Instant?>(nil)

    public init(redis: RedisConnection) {
        self.redis = redis
    }

    /// Every registered node, read in one pipeline.
    public func entries() async throws -> [Entry] {
        do {
            let ids = try await redis.setMembers(FogKeys.nodes).sorted()
            guard !ids.isEmpty else { return [] }
            let replies = try await redis.pipeline(ids.flatMap { [["HGETALL", FogKeys.node($0)], ["GET", FogKeys.heartbeat($0)]] })
            return ids.enumerated().map { index, id in
                var entry = Entry(id: id, alive: false)
                let hash = replies[index * 2].array ?? []
                var fields: [String: String] = [:]
                for pair in stride(from: 0, to: hash.count - 1, by: 2) {
                    if let key = hash[pair].string, let value = hash[pair + 1].string { fields[key] = value }
                }
                do {
                    entry.info = try FogNodeInfo(id: id, hashFields: fields)
                } catch {
                    entry.problem = (error as? WireFormat.Unreadable)?.reason ?? "\(error)"
                }
                if let heartbeat = replies[index * 2 + 1].string {
                    entry.alive = true
                    entry.load = try? WireFormat.decode(NodeLoad.self, from: Array(heartbeat.utf8))
                }
                return entry
            }
        } catch {
            lastFailure.withLock { $0 = .now }
            throw error
        }
    }

    /// Live nodes that take work, as placement candidates (with no reservations yet).
    /// Nodes that may take work: alive, registered and not draining, with their heartbeat.
    public func liveNodes() async throws -> [(info: FogNodeInfo, load: NodeLoad?)] {
        try await entries().compactMap { entry in
            guard entry.alive, entry.load?.draining != true, let info = entry.info else { return nil }
            return (info, entry.load)
        }
    }

    /// True when Redis answered every call of the last `span`: only then does a missing
    /// heartbeat mean a lost node rather than a Redis that restarted empty.
    public func reachableFor(_ span: Duration) -> Bool {
        lastFailure.withLock { last in last.map { ContinuousClock.now - $0 >= span } ?? true }
    }
}
