import FogCore
import Foundation
import Logging
import RedisClient
import Synchronization

/// Reads the fog nodes from Redis: who is registered (`fog:nodes`), what each has
/// (`fog:node:{id}`), and who is alive (a `fog:node:{id}:heartbeat` key that has not expired).
/// Everything in Redis is outside input: an id that is not a node id, a registration with a
/// field out of range, a heartbeat that cannot be taken at its word are reported on the entry
/// and logged once per node (again only when the problem changes), and such a node is never
/// offered to placement.
public final class NodeDirectory: Sendable {
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var info: FogNodeInfo?
        public var load: NodeLoad?
        public var alive: Bool
        public var problem: String?
        /// The id is a valid node id (queues and keys can be named after it).
        public var hasValidID: Bool { NodeID(rawValue: id) != nil }
    }

    let redis: RedisConnection
    let logger: Logger
    private let lastFailure = Mutex<ContinuousClock.Instant?>(nil)
    /// The problem last logged per node, so that each is logged once.
    private let reported = Mutex<[String: String]>([:])
    /// The last read for `recentEntries`, and when it began.
    private let latest = Mutex<(started: ContinuousClock.Instant, read: Task<[Entry], Error>)?>(nil)

    public init(redis: RedisConnection, logger: Logger = Logger(label: "fog.nodes")) {
        self.redis = redis
        self.logger = logger
    }

    /// Every registered node as read at most `age` ago: one read from Redis serves every caller
    /// in that span (the submits of a busy API), and callers that come during a read share it.
    /// A failed read fails its sharers and is not kept.
    public func recentEntries(within age: Duration) async throws -> [Entry] {
        let read = latest.withLock { latest -> Task<[Entry], Error> in
            if let latest, ContinuousClock.now - latest.started < age { return latest.read }
            let read = Task { try await self.entries() }
            latest = (.now, read)
            return read
        }
        do {
            return try await read.value
        } catch {
            latest.withLock { if $0?.read == read { $0 = nil } }
            throw error
        }
    }

    /// Every registered node, read in one pipeline.
    public func entries() async throws -> [Entry] {
        do {
            let ids = try await redis.setMembers(FogKeys.nodes).sorted()
            guard !ids.isEmpty else { return [] }
            let replies = try await redis.pipeline(ids.flatMap { [["HGETALL", FogKeys.node($0)], ["GET", FogKeys.heartbeat($0)]] })
            let entries = ids.enumerated().map { index, id in
                Self.entry(id: id, hash: replies[index * 2].array ?? [], heartbeat: replies[index * 2 + 1].string)
            }
            report(entries)
            return entries
        } catch {
            lastFailure.withLock { $0 = .now }
            throw error
        }
    }

    static func entry(id: String, hash: [RedisValue], heartbeat: String?) -> Entry {
        var entry = Entry(id: id, alive: false)
        guard entry.hasValidID else {
            entry.problem = "fog:nodes holds '\(id.prefix(80))', which is not a node id (1-64 letters, digits, '-' or '_')"
            return entry
        }
        var fields: [String: String] = [:]
        for pair in stride(from: 0, to: hash.count - 1, by: 2) {
            if let key = hash[pair].string, let value = hash[pair + 1].string { fields[key] = value }
        }
        do {
            entry.info = try FogNodeInfo(id: id, hashFields: fields)
        } catch {
            entry.problem = error.reason
        }
        if let heartbeat {
            entry.alive = true
            do {
                let load = try WireFormat.decode(NodeLoad.self, from: Array(heartbeat.utf8))
                if let problem = load.problem {
                    entry.problem = entry.problem ?? "fog:node:\(id):heartbeat: \(problem)"
                } else {
                    entry.load = load
                }
            } catch {
                entry.problem = entry.problem ?? "fog:node:\(id):heartbeat: \(error.reason)"
            }
        }
        return entry
    }

    /// One log line per node whose problem is new, and one when it is gone.
    private func report(_ entries: [Entry]) {
        let changes = reported.withLock { reported -> [(String, String?)] in
            var changes: [(String, String?)] = []
            var seen: Set<String> = []
            for entry in entries {
                seen.insert(entry.id)
                if reported[entry.id] != entry.problem {
                    if entry.problem != nil || reported[entry.id] != nil { changes.append((entry.id, entry.problem)) }
                    reported[entry.id] = entry.problem
                }
            }
            for id in reported.keys where !seen.contains(id) { reported[id] = nil }
            return changes
        }
        for (id, problem) in changes {
            if let problem {
                logger.warning("fog node \(id.prefix(80)) is not placed on: \(problem)")
            } else {
                logger.notice("fog node \(id) reads well again")
            }
        }
    }

    /// Nodes that may take work: alive, readable, not draining, with their heartbeat.
    public func liveNodes() async throws -> [(info: FogNodeInfo, load: NodeLoad?)] {
        try await entries().compactMap { entry in
            guard entry.alive, entry.problem == nil, entry.load?.draining != true, let info = entry.info else { return nil }
            return (info, entry.load)
        }
    }

    /// True when Redis answered every call of the last `span`: only then does a missing
    /// heartbeat mean a lost node rather than a Redis that restarted empty.
    public func reachableFor(_ span: Duration) -> Bool {
        lastFailure.withLock { last in last.map { ContinuousClock.now - $0 >= span } ?? true }
    }
}
