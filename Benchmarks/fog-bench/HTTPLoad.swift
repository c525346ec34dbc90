import ClientSupport
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One keep-alive HTTP/1.1 connection with blocking calls, for a load generator's own thread:
/// the client's cost stays small and out of the measured processes, and with `TCP_NODELAY`
/// nothing waits on Nagle. It reads answers with a `Content-Length` only (Hummingbird's).
/// Unchecked: each one is used by the one lane thread it is handed to, never by two.
final class HTTPConnection: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }

    let host: String
    let port: UInt16
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host else {
            throw Failure(description: "an http:// URL is needed, not \(url)")
        }
        self.host = host == "localhost" ? "127.0.0.1" : host
        guard let port = UInt16(exactly: components.port ?? 80) else { throw Failure(description: "bad port in \(url)") }
        self.port = port
    }

    deinit { if fd >= 0 { close(fd) } }

    private func open() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(socket)
            throw Failure(description: "\(host) is not an IPv4 address")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let text = String(cString: strerror(errno))
            close(socket)
            throw Failure(description: "connect \(host):\(port): \(text)")
        }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        fd = socket
        buffer.removeAll(keepingCapacity: true)
    }

    /// Sends one request and reads its answer: (status, body). Opens the connection first if
    /// needed, and once again if the server had closed the kept one.
    func request(_ method: String, _ path: String, headers: [(String, String)], body: [UInt8]) throws -> (Int, [UInt8]) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + body
        for attempt in 0..<2 {
            if fd < 0 { try open() }
            do {
                try send(bytes)
                return try readAnswer()
            } catch {
                close(fd)
                fd = -1
                if attempt == 1 { throw error }
            }
        }
        throw Failure(description: "unreachable")
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw Failure(description: n == 0 ? "the server closed the connection" : "recv: \(String(cString: strerror(errno)))") }
        buffer.append(contentsOf: chunk[0..<n])
    }

    private func readAnswer() throws -> (Int, [UInt8]) {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if buffer.count >= 4 {
                headEnd = (0...(buffer.count - 4)).first { buffer[$0..<($0 + 4)].elementsEqual(separator) }
            }
            if headEnd == nil { try fill() }
        }
        guard let end = headEnd else { throw Failure(description: "no head") }
        let head = String(decoding: buffer[0..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw Failure(description: "bad status line: \(lines.first ?? "")") }
        var length = 0
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].lowercased()
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { length = Int(value) ?? 0 }
            if name == "transfer-encoding" { throw Failure(description: "chunked answers are not read by this client") }
        }
        let bodyStart = end + 4
        while buffer.count < bodyStart + length { try fill() }
        let body = Array(buffer[bodyStart..<(bodyStart + length)])
        buffer.removeFirst(bodyStart + length)
        return (status, body)
    }
}

/// Runs `work` on `lanes` threads, each with its own `HTTPConnection`, taking jobs from a queue
/// that `offer` fills; `finish` lets the lanes drain the queue and end.
final class LaneRunner<Job: Sendable>: @unchecked Sendable {
    private let jobs = Mutex<[Job]>([])
    private let available = DispatchSemaphore(value: 0)
    private let group = DispatchGroup()
    private let lanes: Int

    init(lanes: Int, url: String, work: @escaping @Sendable (HTTPConnection, Job) -> Void) throws {
        self.lanes = lanes
        for index in 0..<lanes {
            let connection = try HTTPConnection(url: url)
            group.enter()
            let thread = Thread { [self] in
                while true {
                    available.wait()
                    guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { break }
                    work(connection, job)
                }
                group.leave()
            }
            thread.name = "lane-\(index)"
            thread.start()
        }
    }

    /// How many jobs wait for a free lane.
    var waiting: Int { jobs.withLock { $0.count } }

    func offer(_ job: Job) {
        jobs.withLock { $0.append(job) }
        available.signal()
    }

    /// Waits until every job offered is done and the lanes have ended.
    func finish() {
        for _ in 0..<lanes { available.signal() }
        group.wait()
    }
}

/// Runs the blocking part of a load (the pacing sleeps, the wait for the lanes) on a thread of
/// its own, so that it holds no thread of Swift's cooperative pool.
func offThePool(_ body: @escaping @Sendable () -> Void) async throws {
    let worker = BlockingWorker(name: "fog-bench-pacer")
    defer { worker.shutdown() }
    try await worker.run(body)
}

/// Wall-clock seconds: the database stamps outcomes with the same clock.
func wallClock() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Sleeps until the wall clock reads `time` (at once if it has passed).
func sleep(until time: Double) {
    let left = time - wallClock()
    guard left > 0 else { return }
    var request = timespec(tv_sec: Int(left), tv_nsec: Int((left - Double(Int(left))) * 1e9))
    nanosleep(&request, nil)
}
