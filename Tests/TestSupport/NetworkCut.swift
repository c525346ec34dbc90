import Foundation

/// Cuts one process tree off from some loopback ports, as if its host had lost the network:
/// the process is started in a cgroup (v2) of its own, and an nftables table of this object
/// drops every packet its sockets send to those ports. Nothing is refused or reset, so calls
/// already in flight block until their own timeouts, as over a dead link. `heal()` deletes the
/// table (connections that are still open then carry on); `remove()` also deletes the cgroup
/// once the process has ended. Needs root, nft and a cgroup2 mount (ENVIRONMENT.md §5).
public final class NetworkCut: @unchecked Sendable {
    public let name: String
    /// The cgroup's folder, and its path as nft resolves it (relative to /sys/fs/cgroup).
    public let directory: String
    let nftPath: String
    private var ports: [Int] = []
    private(set) public var isCut = false

    public init(name: String) throws {
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw CutError("a cut's name is letters, digits and _: \(name)")
        }
        guard let mount = Self.cgroup2Mount() else { throw CutError("no cgroup2 file system is mounted (see /proc/mounts)") }
        self.name = name
        directory = "\(mount)/\(name)"
        let relative = (mount.hasPrefix("/sys/fs/cgroup") ? String(mount.dropFirst("/sys/fs/cgroup".count)) : mount).drop { $0 == "/" }
        nftPath = relative.isEmpty ? name : "\(relative)/\(name)"
        if !FileManager.default.fileExists(atPath: directory) {
            guard mkdir(directory, 0o755) == 0 else {
                throw CutError("cannot create the cgroup \(directory): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// argv that runs `argv` inside this cut's cgroup (the shell execs it: same PID).
    public func wrap(_ argv: [String]) -> [String] {
        ["/bin/sh", "-c", "echo $$ > '\(directory)/cgroup.procs' && exec \"$@\"", "fog-cut"] + argv
    }

    /// The processes in the cgroup now.
    public var processes: [pid_t] {
        ((try? String(contentsOfFile: "\(directory)/cgroup.procs", encoding: .utf8)) ?? "")
            .split(separator: "\n").compactMap { pid_t($0) }
    }

    /// Drops what the cgroup's sockets send to these loopback ports, from now on.
    public func cut(ports: [Int]) throws {
        self.ports = ports
        let rules = """
            table inet \(name) {
              chain output {
                type filter hook output priority filter; policy accept;
                socket cgroupv2 level 1 "\(nftPath)" tcp dport { \(ports.map(String.init).joined(separator: ", ")) } counter drop
              }
            }

            """
        let file = "\(NSTemporaryDirectory())/\(name).nft"
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try TestServices.run(["nft", "-f", file])
        isCut = true
    }

    /// How many packets the cut has dropped so far (0 when it is not in place).
    public var dropped: Int {
        guard isCut, let text = try? TestServices.run(["nft", "list", "table", "inet", name]),
            let range = text.range(of: #"packets (\d+)"#, options: .regularExpression)
        else { return 0 }
        return Int(text[range].split(separator: " ")[1]) ?? 0
    }

    public func heal() throws {
        guard isCut else { return }
        try TestServices.run(["nft", "delete", "table", "inet", name])
        isCut = false
    }

    /// Heals, and deletes the cgroup (its processes must have ended).
    public func remove() {
        try? heal()
        rmdir(directory)
    }

    /// The loopback ports of service URLs (`scheme://user:pass@host:port/...`, comma-separated).
    public static func ports(of urls: [String]) -> [Int] {
        urls.flatMap { $0.split(separator: ",") }.compactMap { URLComponents(string: String($0))?.port }
    }

    static func cgroup2Mount() -> String? {
        guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return nil }
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 2, fields[2] == "cgroup2" { return String(fields[1]) }
        }
        return nil
    }

    public struct CutError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
