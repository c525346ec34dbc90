import FogCore
import Foundation

/// The scheduler's settings, from `FOG_*` variables (docs/CONFIGURATION.md lists them with
/// their defaults). Secrets (URLs with passwords, API tokens) have no defaults.
public struct SchedulerConfiguration: Sendable {
    public var services: ServiceEnvironment
    /// This replica's name in the leader key and the logs.
    public var instanceID: String
    public var httpHost = "127.0.0.1"
    public var httpPort = 8080
    public var tokens: APITokens
    /// The largest request body accepted (a batch of 1,000 tasks fits).
    public var maxBodyBytes = 8 * 1024 * 1024
    public var leaderLease: Duration = .seconds(5)
    /// How often a replica looks at the leader key: a tenth of the lease, 100 ms to 500 ms.
    public var leaderTick: Duration { min(.milliseconds(500), max(.milliseconds(100), leaderLease / 10)) }
    /// The longest the dispatcher sleeps between rounds when nothing nudges it.
    public var dispatchInterval: Duration = .milliseconds(250)
    /// Pending tasks taken per dispatch transaction.
    public var dispatchBatch = 500
    /// How often the leader looks for lost fog nodes and overdue attempts.
    public var failureCheckInterval: Duration = .milliseconds(500)
    /// A fog node's heartbeat TTL: Redis must have been reachable this long before a missing
    /// heartbeat counts as a lost node (a restarted Redis has none for a moment).
    public var nodeHeartbeatTTL: Duration = .seconds(6)
    /// How long past its timeout a running attempt may go before the scheduler ends it.
    public var timeoutGrace: Duration = .seconds(30)
    /// An attempt written but not confirmed by the broker this long ago is published again.
    public var republishAfter: Duration = .seconds(5)
    /// A queued attempt whose message the broker confirmed this long ago and that never started
    /// is placed again: its message is gone (purged, dead-lettered, dropped by a node).
    public var queuedTimeout: Duration = .seconds(60)
    public var retry = RetryPolicy()
    /// How the dispatcher chooses a node (`FogCore.PlacementPolicies.names`).
    public var placementPolicy = "smart"
    /// `smart`'s weights (`FOG_SMART_WEIGHTS=time=1,energy=0.4`, the rest default).
    public var smartWeights = SmartWeights()
    /// Per affinity key: the most queued or running attempts at once, and the most placed per
    /// second (`FOG_AFFINITY_MAX_ACTIVE`, `FOG_AFFINITY_MAX_PER_SECOND`; 0 is no limit).
    public var affinityLimiter = AffinityLimiter()
    public var databasePoolSize = 8
    /// Apply pending migrations at start (safe when replicas race).
    public var autoMigrate = true

    public init(services: ServiceEnvironment, instanceID: String, tokens: APITokens) {
        self.services = services
        self.instanceID = instanceID
        self.tokens = tokens
    }

    /// Reads every setting; `requireTokens` is false for commands that serve no API.
    public init(environment: [String: String], requireTokens: Bool = true) throws {
        let settings = Settings(environment)
        let services = try ServiceEnvironment(environment: environment, required: [.broker, .redis, .database])
        let tokens = try APITokens(parsing: settings.string("FOG_API_TOKENS") ?? "")
        if requireTokens && tokens.isEmpty {
            throw Settings.Invalid(name: "FOG_API_TOKENS", value: "", expected: "at least one token (TOKEN or TOKEN:read, comma-separated)")
        }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "scheduler"
        self.init(services: services, instanceID: settings.string("FOG_INSTANCE_ID") ?? "\(host)-\(getpid())", tokens: tokens)
        httpHost = settings.string("FOG_HTTP_HOST") ?? httpHost
        httpPort = try settings.int("FOG_HTTP_PORT", default: httpPort, in: 1...65535)
        maxBodyBytes = try settings.int("FOG_MAX_BODY_BYTES", default: maxBodyBytes, in: 1024...256 * 1024 * 1024)
        leaderLease = try settings.duration("FOG_LEADER_LEASE", default: leaderLease)
        dispatchInterval = try settings.duration("FOG_DISPATCH_INTERVAL", default: dispatchInterval)
        dispatchBatch = try settings.int("FOG_DISPATCH_BATCH", default: dispatchBatch, in: 1...10_000)
        failureCheckInterval = try settings.duration("FOG_FAILURE_CHECK_INTERVAL", default: failureCheckInterval)
        nodeHeartbeatTTL = try settings.duration("FOG_NODE_HEARTBEAT_TTL", default: nodeHeartbeatTTL)
        timeoutGrace = try settings.duration("FOG_TIMEOUT_GRACE", default: timeoutGrace)
        republishAfter = try settings.duration("FOG_REPUBLISH_AFTER", default: republishAfter)
        queuedTimeout = try settings.duration("FOG_QUEUED_TIMEOUT", default: queuedTimeout)
        retry = RetryPolicy(
            base: try settings.duration("FOG_RETRY_BASE", default: retry.base),
            cap: try settings.duration("FOG_RETRY_CAP", default: retry.cap))
        placementPolicy = settings.string("FOG_PLACEMENT_POLICY") ?? placementPolicy
        guard PlacementPolicies.make(placementPolicy) != nil else {
            throw Settings.Invalid(
                name: "FOG_PLACEMENT_POLICY", value: placementPolicy,
                expected: "one of \(PlacementPolicies.names.joined(separator: ", "))")
        }
        var overrides: [String: Double] = [:]
        for (name, text) in try settings.map("FOG_SMART_WEIGHTS") {
            guard let value = Double(text) else {
                throw Settings.Invalid(name: "FOG_SMART_WEIGHTS", value: "\(name)=\(text)", expected: "name=number pairs")
            }
            overrides[name] = value
        }
        do { smartWeights = try SmartWeights().applying(overrides) } catch {
            throw Settings.Invalid(name: "FOG_SMART_WEIGHTS", value: error.name, expected: "a weight name and value: \(error.reason)")
        }
        let maxActive = try settings.int("FOG_AFFINITY_MAX_ACTIVE", default: 0, in: 0...1_000_000)
        let perSecond = try settings.double("FOG_AFFINITY_MAX_PER_SECOND", default: 0)
        affinityLimiter = AffinityLimiter(maxActive: maxActive == 0 ? nil : maxActive, perSecond: perSecond == 0 ? nil : perSecond)
        databasePoolSize = try settings.int("FOG_DATABASE_POOL_SIZE", default: databasePoolSize, in: 1...200)
        autoMigrate = try settings.bool("FOG_AUTO_MIGRATE", default: autoMigrate)
        if leaderLease < .seconds(1) {
            throw Settings.Invalid(
                name: "FOG_LEADER_LEASE", value: "\(leaderLease)", expected: "at least 1s, so that it can be renewed in time")
        }
    }
}

/// The bearer tokens the API accepts (`FOG_API_TOKENS`: `TOKEN` for read and write,
/// `TOKEN:read` for read only, comma-separated). Compared in constant time.
public struct APITokens: Sendable {
    public enum Scope: String, Sendable { case read, write }

    private var tokens: [(token: [UInt8], scope: Scope)]

    public init(parsing text: String) throws {
        tokens = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            var token = item
            var scope = Scope.write
            if let colon = item.lastIndex(of: ":") {
                guard let parsed = Scope(rawValue: String(item[item.index(after: colon)...])) else {
                    throw Settings.Invalid(name: "FOG_API_TOKENS", value: "<hidden>", expected: "TOKEN, TOKEN:read or TOKEN:write")
                }
                scope = parsed
                token = String(item[..<colon])
            }
            guard token.utf8.count >= 16 else {
                throw Settings.Invalid(name: "FOG_API_TOKENS", value: "<hidden>", expected: "tokens of at least 16 characters")
            }
            tokens.append((Array(token.utf8), scope))
        }
    }

    public var isEmpty: Bool { tokens.isEmpty }

    /// The scope of `presented`, or nil when no token matches.
    public func scope(of presented: String) -> Scope? {
        let bytes = Array(presented.utf8)
        var found: Scope?
        for entry in tokens where Self.constantTimeEqual(entry.token, bytes) { found = entry.scope }
        return found
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
