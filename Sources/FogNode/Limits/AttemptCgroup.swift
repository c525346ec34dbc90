import FogCore
import Foundation

/// The control groups a fog node may create per attempt: cgroup v2 (one unified tree), or
/// cgroup v1 (separate `cpu` and `memory` hierarchies, `pids` when it has `pids.max`), or none
/// when it cannot write them (an unprivileged node, a read-only /sys/fs/cgroup), in which case
/// attempts run under rlimits and RSS polling instead.
enum CgroupLayout: Sendable, Equatable, CustomStringConvertible {
    case v2(root: String)
    case v1(cpu: String, memory: String, pids: String?)
    case unavailable(reason: String)

    var description: String {
        switch self {
        case .v2(let root): "cgroup v2 under \(root)"
        case .v1(let cpu, let memory, let pids): "cgroup v1 (cpu \(cpu), memory \(memory)\(pids.map { ", pids \($0)" } ?? ""))"
        case .unavailable(let reason): "no cgroups (\(reason)): rlimits and RSS polling"
        }
    }

    /// Finds a writable layout, with a parent group named after this node in each hierarchy.
    static func detect(node: String, base: String = "/sys/fs/cgroup") -> CgroupLayout {
        let manager = FileManager.default
        let name = "fog-node-\(node)"
        if manager.fileExists(atPath: "\(base)/cgroup.controllers") {
            let controllers = (try? String(contentsOfFile: "\(base)/cgroup.controllers", encoding: .utf8)) ?? ""
            guard controllers.contains("cpu"), controllers.contains("memory") else {
                return .unavailable(reason: "cgroup v2 without the cpu and memory controllers")
            }
            // Our own group: the one /proc/self/cgroup names ("0::/path").
            let own =
                ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
                .split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) } ?? "/"
            let ownPath = "\(base)\(own == "/" ? "" : own)"
            func write(_ value: String, _ path: String) -> Bool {
                (try? value.write(toFile: path, atomically: false, encoding: .utf8)) != nil
            }
            func enable(in directory: String) -> Bool {
                write("+cpu +memory +pids", "\(directory)/cgroup.subtree_control")
                    || write("+cpu +memory", "\(directory)/cgroup.subtree_control")
            }
            // cgroup v2 lets a group hand controllers to children only when it holds no process
            // itself (a systemd service with Delegate=yes holds ours): move into a leaf first.
            if !enable(in: ownPath) {
                let leaf = "\(ownPath)/fog-node-self"
                try? manager.createDirectory(atPath: leaf, withIntermediateDirectories: true)
                guard write(String(getpid()), "\(leaf)/cgroup.procs"), enable(in: ownPath) else {
                    return .unavailable(reason: "cannot enable the cpu and memory controllers below \(ownPath)")
                }
            }
            let parent = "\(ownPath)/\(name)"
            guard (try? manager.createDirectory(atPath: parent, withIntermediateDirectories: true)) != nil, enable(in: parent)
            else { return .unavailable(reason: "cannot create \(parent) with the cpu and memory controllers") }
            return .v2(root: parent)
        }
        let cpu = "\(base)/cpu/\(name)"
        let memory = "\(base)/memory/\(name)"
        guard manager.fileExists(atPath: "\(base)/cpu/cpu.cfs_quota_us"), manager.fileExists(atPath: "\(base)/memory/memory.limit_in_bytes")
        else {
            return .unavailable(reason: "no cgroup v1 cpu and memory hierarchies")
        }
        guard (try? manager.createDirectory(atPath: cpu, withIntermediateDirectories: true)) != nil,
            (try? manager.createDirectory(atPath: memory, withIntermediateDirectories: true)) != nil
        else { return .unavailable(reason: "cannot create \(cpu) and \(memory)") }
        var pids: String?
        if manager.fileExists(atPath: "\(base)/pids/pids.max") || manager.fileExists(atPath: "\(base)/pids/\(name)/pids.max") {
            pids = "\(base)/pids/\(name)"
            if (try? manager.createDirectory(atPath: pids!, withIntermediateDirectories: true)) == nil { pids = nil }
        }
        return .v1(cpu: cpu, memory: memory, pids: pids)
    }
}

/// One attempt's control groups: created with its limits before the program starts (the exec
/// shim joins them before `execve`), read for the OOM kill and peak memory when it ends, then
/// emptied and removed.
struct AttemptCgroup: Sendable {
    /// The directories whose `cgroup.procs` the attempt joins.
    let directories: [String]
    let layout: CgroupLayout

    static let cpuPeriodMicroseconds = 100_000

    init?(layout: CgroupLayout, attempt: String, limits: Resources, maxProcesses: Int) {
        self.layout = layout
        let manager = FileManager.default
        func write(_ value: String, _ path: String) -> Bool {
            (try? value.write(toFile: path, atomically: false, encoding: .utf8)) != nil
        }
        let quota = max(1_000, limits.cpuMillicores * Self.cpuPeriodMicroseconds / 1000)
        let memory = limits.memoryMB * 1_048_576
        switch layout {
        case .unavailable:
            return nil
        case .v2(let root):
            let directory = "\(root)/\(attempt)"
            guard (try? manager.createDirectory(atPath: directory, withIntermediateDirectories: false)) != nil,
                write("\(quota) \(Self.cpuPeriodMicroseconds)", "\(directory)/cpu.max"), write(String(memory), "\(directory)/memory.max")
            else { return nil }
            _ = write("0", "\(directory)/memory.swap.max")
            _ = write(String(maxProcesses), "\(directory)/pids.max")
            directories = [directory]
        case .v1(let cpu, let memoryRoot, let pids):
            let cpuDirectory = "\(cpu)/\(attempt)"
            let memoryDirectory = "\(memoryRoot)/\(attempt)"
            guard (try? manager.createDirectory(atPath: cpuDirectory, withIntermediateDirectories: false)) != nil,
                (try? manager.createDirectory(atPath: memoryDirectory, withIntermediateDirectories: false)) != nil,
                write(String(Self.cpuPeriodMicroseconds), "\(cpuDirectory)/cpu.cfs_period_us"),
                write(String(quota), "\(cpuDirectory)/cpu.cfs_quota_us"),
                write(String(memory), "\(memoryDirectory)/memory.limit_in_bytes")
            else { return nil }
            _ = write("0", "\(memoryDirectory)/memory.swappiness")
            _ = write(String(memory), "\(memoryDirectory)/memory.memsw.limit_in_bytes")
            var all = [cpuDirectory, memoryDirectory]
            if let pids {
                let pidsDirectory = "\(pids)/\(attempt)"
                if (try? manager.createDirectory(atPath: pidsDirectory, withIntermediateDirectories: false)) != nil,
                    write(String(maxProcesses), "\(pidsDirectory)/pids.max")
                {
                    all.append(pidsDirectory)
                }
            }
            directories = all
        }
    }

    private var memoryDirectory: String? {
        switch layout {
        case .v2: directories.first
        case .v1: directories.first { $0.contains("/memory/") }
        case .unavailable: nil
        }
    }

    private func read(_ file: String) -> String? {
        guard let directory = memoryDirectory else { return nil }
        return try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
    }

    /// True when the kernel's OOM killer killed a process of this attempt.
    var oomKilled: Bool {
        let text = (layout.isV2 ? read("memory.events") : read("memory.oom_control")) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return (Int(line.dropFirst("oom_kill ".count).trimmingCharacters(in: .whitespaces)) ?? 0) > 0
        }
        return false
    }

    /// The most memory the attempt's group held, in MB, when the kernel tells.
    var peakMemoryMB: Double? {
        let text = layout.isV2 ? read("memory.peak") : read("memory.max_usage_in_bytes")
        return text.flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }.map { $0 / 1_048_576 }
    }

    /// Kills whatever is left in the groups and removes them.
    func remove() {
        for directory in directories {
            let procs = (try? String(contentsOfFile: "\(directory)/cgroup.procs", encoding: .utf8)) ?? ""
            for pid in procs.split(separator: "\n").compactMap({ pid_t($0) }) { kill(pid, SIGKILL) }
        }
        for directory in directories {
            for _ in 0..<50 {
                if rmdir(directory) == 0 || errno == ENOENT { break }
                usleep(20_000)
            }
        }
    }
}

extension CgroupLayout {
    var isV2: Bool {
        if case .v2 = self { return true }
        return false
    }
}
