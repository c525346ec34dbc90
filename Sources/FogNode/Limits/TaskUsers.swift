import Foundation

/// The unprivileged ids an attempt runs as.
struct TaskIdentity: Sendable, Equatable {
    let uid: uid_t
    let gid: gid_t
    /// No other attempt runs under this uid while this one runs: whatever is left of its
    /// processes afterwards may be killed by uid.
    let exclusive: Bool
}

/// Who attempts run as. A node running as root runs each attempt as an unprivileged user:
/// one user for all (`FOG_TASK_USER`, `nobody` by default), or, with `FOG_TASK_UIDS`, a uid
/// (and a group of the same number) of its own per running attempt, so that attempts of
/// different submitters cannot read each other's `/proc`, files or signals. A node that is not
/// root cannot switch users: its attempts run as its own user, and it says so when it starts.
struct TaskUsers: Sendable, Equatable {
    enum Mode: Sendable, Equatable {
        case shared(uid: uid_t, gid: gid_t)
        case pool(ClosedRange<UInt32>)
        case unprivileged
    }

    let mode: Mode
    private var inUse: Set<UInt32> = []

    init(mode: Mode) { self.mode = mode }

    /// From the node's settings: the pool when one is set, else the named user (when root).
    init(configuration: FogNodeConfiguration) {
        if geteuid() != 0 {
            self.init(mode: .unprivileged)
        } else if let range = configuration.taskUIDs {
            self.init(mode: .pool(range))
        } else if let entry = getpwnam(configuration.taskUser), entry.pointee.pw_uid != 0 {
            self.init(mode: .shared(uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid))
        } else {
            // The configuration refuses this; never fall back to running tasks as root.
            self.init(mode: .shared(uid: 65_534, gid: 65_534))
        }
    }

    var description: String {
        switch mode {
        case .shared(let uid, _): "as uid \(uid), shared by every attempt (FOG_TASK_UIDS gives each its own)"
        case .pool(let range): "each as a uid of its own from \(range.lowerBound)-\(range.upperBound)"
        case .unprivileged: "as this node's own user (it is not root and cannot switch users)"
        }
    }

    /// Whether a new attempt may start now, and as whom (nil: as the node's own user). With a
    /// pool, an attempt waits while every uid of it is in use.
    mutating func take() -> (available: Bool, identity: TaskIdentity?) {
        switch mode {
        case .unprivileged:
            return (true, nil)
        case .shared(let uid, let gid):
            return (true, TaskIdentity(uid: uid, gid: gid, exclusive: false))
        case .pool(let range):
            guard let free = range.first(where: { !inUse.contains($0) }) else { return (false, nil) }
            inUse.insert(free)
            return (true, TaskIdentity(uid: free, gid: free, exclusive: true))
        }
    }

    mutating func giveBack(_ identity: TaskIdentity?) {
        guard let identity, identity.exclusive else { return }
        inUse.remove(identity.uid)
    }

    /// Why a uid range cannot be given to tasks: it includes root, or a user or group this host
    /// already has (tasks would act as them).
    static func problem(with range: ClosedRange<UInt32>) -> String? {
        if range.contains(0) { return "it includes uid 0 (root)" }
        setpwent()
        defer { endpwent() }
        while let entry = getpwent() {
            if range.contains(entry.pointee.pw_uid) {
                return "it includes uid \(entry.pointee.pw_uid) (\(String(cString: entry.pointee.pw_name)))"
            }
        }
        setgrent()
        defer { endgrent() }
        while let entry = getgrent() {
            if range.contains(entry.pointee.gr_gid) {
                return "it includes gid \(entry.pointee.gr_gid) (\(String(cString: entry.pointee.gr_name)))"
            }
        }
        return nil
    }

    /// Kills every process left running as `uid` (a daemon the attempt started in a session
    /// of its own, outside its process group and, without control groups, out of reach
    /// otherwise). Only for an exclusive uid.
    static func killAll(uid: uid_t) {
        for _ in 0..<5 {
            var found = false
            for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap({ pid_t($0) }) ?? [] {
                guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                    let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }),
                    line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().contains(where: { UInt32($0) == uid })
                else { continue }
                kill(pid, SIGKILL)
                found = true
            }
            if !found { return }
            usleep(20_000)
        }
    }
}
