import FogCore
import Foundation

/// The built-in task kinds that run in a child process (`fog-node builtin ...`), so that
/// they go through the same limits, timeouts and kills as any program.
public enum Builtins {
    /// The argv that runs `kind` with `args` through this executable.
    static func argv(_ kind: BuiltinKind, _ args: BuiltinArguments) -> [String] {
        var argv = [executablePath, "builtin", kind.rawValue]
        if let seconds = args.seconds { argv += ["--seconds", String(seconds)] }
        if let millicores = args.millicores { argv += ["--millicores", String(millicores)] }
        if let mb = args.mb { argv += ["--mb", String(mb)] }
        if let code = args.exitCode { argv += ["--exit-code", String(code)] }
        return argv
    }

    static let executablePath: String = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return count > 0 ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }()

    /// Runs a built-in in this (child) process; answers its exit status.
    public static func run(_ kind: BuiltinKind, seconds: Double, millicores: Int, mb: Int, exitCode: Int32) -> Int32 {
        switch kind {
        case .noop:
            break
        case .sleep:
            Thread.sleep(forTimeInterval: seconds)
        case .cpu:
            burn(millicores: millicores, seconds: seconds)
        case .alloc:
            let bytes = mb * 1_048_576
            guard let memory = malloc(bytes) else { return 12 }
            let pages = memory.assumingMemoryBound(to: UInt8.self)
            // Touch every page so that the memory is really used, not just reserved.
            for offset in stride(from: 0, to: bytes, by: 4096) { pages[offset] = 1 }
            Thread.sleep(forTimeInterval: seconds)
            free(memory)
        }
        return exitCode
    }

    /// Keeps `millicores` of CPU busy for `seconds`: one thread per whole core, each busy for
    /// its share of every 10 ms.
    static func burn(millicores: Int, seconds: Double) {
        let threads = max(1, (millicores + 999) / 1000)
        let share = Double(millicores) / Double(threads) / 1000
        let end = Date().addingTimeInterval(seconds)
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                var sink = 0.0
                while Date() < end {
                    let sliceStart = Date()
                    while Date().timeIntervalSince(sliceStart) < 0.01 * share { sink += 1 }
                    let rest = 0.01 * (1 - share)
                    if rest > 0 { Thread.sleep(forTimeInterval: rest) }
                }
                if sink < 0 { print(sink) }
                group.leave()
            }
        }
        group.wait()
    }
}
