import ClientSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whether the local RabbitMQ node takes AMQP connections: a TCP connection to its listener,
/// closed before a byte is sent. The listener opens when the node's application has booted and
/// closes with it (`stop_app`, a crash, a restart), so a connection that is accepted stands for
/// a running node. It costs a millisecond where a `rabbitmqctl` call boots an Erlang VM (about
/// half a second of CPU), so clusterctl asks it on every heartbeat of a settled member and
/// `cluster_status` only when it fails or a full look is due.
///
/// It links no AMQP library (clusterctl must not link librabbitmq) and says nothing: RabbitMQ
/// logs a connection that sent no data at debug level only, as the health check it is (one
/// that sends the protocol header and hangs up logs two warnings each time).
public struct ListenerProbe: Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var timeout: Duration

    public init(host: String, port: UInt16, timeout: Duration = .seconds(2)) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    public var description: String { "\(host):\(port)" }

    /// True when the listener accepted a connection within the timeout.
    public func accepts(on worker: BlockingWorker) async -> Bool {
        let probe = self
        return (try? await worker.run { probe.acceptsBlocking() }) ?? false
    }

    /// The same, on the calling thread (it blocks for at most the timeout per address).
    public func acceptsBlocking() -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return false }
        defer { freeaddrinfo(list) }
        var address: UnsafeMutablePointer<addrinfo>? = first
        while let current = address {
            if accepts(current.pointee) { return true }
            address = current.pointee.ai_next
        }
        return false
    }

    private var timeoutMilliseconds: Int32 {
        Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
    }

    private func accepts(_ address: addrinfo) -> Bool {
        let fd = socket(address.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if connect(fd, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS, wait(fd, for: Int16(POLLOUT)) else { return false }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else { return false }
        }
        return true
    }

    private func wait(_ fd: Int32, for events: Int16) -> Bool {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        return poll(&entry, 1, timeoutMilliseconds) == 1 && entry.revents & events != 0
    }
}
